"""Metrics, route records and logging setup."""
