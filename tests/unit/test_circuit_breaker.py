"""Circuit breaker state machine: closed -> open -> half-open -> closed/open."""

from __future__ import annotations

from switchyard.pools.circuit_breaker import CircuitBreaker
from switchyard.types import CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_recovers_via_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, open_s=10.0, clock=clock)
    for _ in range(2):
        breaker.on_failure()
    assert breaker.state == CircuitState.CLOSED and breaker.allows_request()
    breaker.on_failure()
    assert breaker.state == CircuitState.OPEN and not breaker.allows_request()
    clock.now += 9.9
    assert breaker.state == CircuitState.OPEN
    clock.now += 0.2
    assert breaker.state == CircuitState.HALF_OPEN
    assert breaker.allows_request()
    breaker.on_attempt()
    assert not breaker.allows_request()  # one probe at a time
    breaker.on_success()
    assert breaker.state == CircuitState.CLOSED and breaker.allows_request()


def test_failed_probe_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, open_s=5.0, clock=clock)
    breaker.on_failure()
    clock.now += 5.0
    assert breaker.state == CircuitState.HALF_OPEN
    breaker.on_attempt()
    breaker.on_failure()
    assert breaker.state == CircuitState.OPEN
    clock.now += 4.0
    assert not breaker.allows_request()


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, open_s=5.0, clock=Clock())
    breaker.on_failure()
    breaker.on_success()
    breaker.on_failure()
    assert breaker.state == CircuitState.CLOSED


def test_disabled_breaker_never_opens() -> None:
    breaker = CircuitBreaker(failure_threshold=1, open_s=5.0, enabled=False, clock=Clock())
    for _ in range(10):
        breaker.on_failure()
    assert breaker.allows_request()
