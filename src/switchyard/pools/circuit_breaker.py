"""Per-endpoint circuit breaker: closed → open after N consecutive failures → half-open probe."""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic

from switchyard.types import CircuitState


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int,
        open_s: float,
        half_open_max_probes: int = 1,
        enabled: bool = True,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._open_s = open_s
        self._max_probes = half_open_max_probes
        self._enabled = enabled
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0
        self._state = CircuitState.CLOSED

    @property
    def state(self) -> CircuitState:
        if self._state == CircuitState.OPEN and self._clock() - self._opened_at >= self._open_s:
            self._state = CircuitState.HALF_OPEN
            self._probes = 0
        return self._state

    def allows_request(self) -> bool:
        """True when a request may go out now (half-open admits a bounded number of probes)."""
        state = self.state
        if state == CircuitState.CLOSED:
            return True
        return state == CircuitState.HALF_OPEN and self._probes < self._max_probes

    def on_attempt(self) -> None:
        if self.state == CircuitState.HALF_OPEN:
            self._probes += 1

    def on_success(self) -> None:
        self._failures = 0
        self._state = CircuitState.CLOSED
        self._probes = 0

    def on_failure(self) -> None:
        if not self._enabled:
            return
        self._failures += 1
        if self._state == CircuitState.HALF_OPEN or self._failures >= self._threshold:
            self._state = CircuitState.OPEN
            self._opened_at = self._clock()
            self._probes = 0
