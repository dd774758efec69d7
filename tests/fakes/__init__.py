"""Fake OpenAI-compatible backends for integration tests, e2e tests and benchmarks."""
