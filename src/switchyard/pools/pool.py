"""A pool of replicas for one or more models: live state, admission, balancer choice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from time import monotonic

from switchyard.config.pools import EndpointConfig, PoolConfig
from switchyard.errors import NoHealthyEndpointError, OverloadedError
from switchyard.pools.backend import UpstreamTarget
from switchyard.pools.balancer import Balancer, build_balancer
from switchyard.pools.circuit_breaker import CircuitBreaker
from switchyard.types import EndpointState, RequestView

_EWMA = 0.2


class Endpoint:
    """Mutable runtime state of one replica (owned by its Pool, on the event loop)."""

    def __init__(self, config: EndpointConfig, pool: PoolConfig) -> None:
        self.config = config
        self.pool_name = pool.name
        self.target = UpstreamTarget(
            url=config.url.rstrip("/"),
            api_key=config.api_key,
            connect_timeout_s=pool.timeouts.connect_s,
            attempt_timeout_s=pool.timeouts.attempt_s,
        )
        breaker = pool.circuit_breaker
        self.breaker = CircuitBreaker(
            breaker.failure_threshold, breaker.open_s, breaker.half_open_max_probes,
            enabled=breaker.enabled,
        )
        self.healthy = True
        self.in_flight = 0
        self.pending_prefill_tokens = 0
        self.consecutive_failures = 0
        self.ewma_latency_ms = 0.0

    @property
    def name(self) -> str:
        return self.config.name

    def state(self) -> EndpointState:
        return EndpointState(
            name=self.config.name,
            pool=self.pool_name,
            url=self.target.url,
            weight=self.config.weight,
            healthy=self.healthy,
            circuit=self.breaker.state,
            in_flight=self.in_flight,
            max_concurrency=self.config.max_concurrency,
            pending_prefill_tokens=self.pending_prefill_tokens,
            ewma_latency_ms=self.ewma_latency_ms,
        )

    def admits(self) -> bool:
        saturated = 0 < self.config.max_concurrency <= self.in_flight
        return self.healthy and not saturated and self.breaker.allows_request()


class Lease:
    """One attempt's hold on an endpoint; `release()` frees the slot exactly once."""

    __slots__ = ("endpoint", "_pool", "_tokens", "_released", "_prefilled")

    def __init__(self, pool: Pool, endpoint: Endpoint, tokens: int) -> None:
        self.endpoint = endpoint
        self._pool = pool
        self._tokens = tokens
        self._released = False
        self._prefilled = False

    def first_byte(self) -> None:
        if not self._prefilled:
            self._prefilled = True
            self.endpoint.pending_prefill_tokens -= self._tokens

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self.first_byte()
        self.endpoint.in_flight -= 1
        self._pool.slot_freed()


class Pool:
    def __init__(self, config: PoolConfig, balancer: Balancer | None = None) -> None:
        self.config = config
        self.name = config.name
        self.endpoints = [Endpoint(e, config) for e in config.endpoints]
        self.balancer = balancer or build_balancer(config.balancer)
        self._freed = asyncio.Event()
        self._waiters = 0

    def states(self) -> list[EndpointState]:
        return [e.state() for e in self.endpoints]

    def any_available(self) -> bool:
        return any(e.healthy and e.breaker.state.value != "open" for e in self.endpoints)

    def slot_freed(self) -> None:
        if self._waiters:
            self._freed.set()

    def _candidates(self, exclude: Sequence[str]) -> list[Endpoint]:
        admitted = [e for e in self.endpoints if e.admits()]
        fresh = [e for e in admitted if e.name not in exclude]
        return fresh or admitted

    async def acquire(self, view: RequestView, exclude: Sequence[str], tokens: int) -> Lease:
        """Pick a replica for one attempt, waiting (bounded) while all are saturated."""
        deadline: float | None = None
        while True:
            candidates = self._candidates(exclude)
            if candidates:
                return self._lease(candidates, view, tokens)
            if not self._has_capacity_later():
                raise NoHealthyEndpointError(f"no healthy replica in pool {self.name!r}")
            now = monotonic()
            if deadline is None:
                deadline = now + max(e.config.max_queue_wait_s for e in self.endpoints)
            if now >= deadline:
                raise OverloadedError(
                    f"all replicas of pool {self.name!r} are busy; retry later", retry_after=1.0
                )
            await self._wait_for_slot(deadline - now)

    def _has_capacity_later(self) -> bool:
        """True when some replica is healthy and only busy (worth queueing for)."""
        return any(e.healthy and e.breaker.allows_request() for e in self.endpoints)

    async def _wait_for_slot(self, timeout: float) -> None:
        self._waiters += 1
        self._freed.clear()
        try:
            await asyncio.wait_for(self._freed.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters -= 1

    def _lease(self, candidates: list[Endpoint], view: RequestView, tokens: int) -> Lease:
        if len(self.endpoints) == 1:
            chosen = candidates[0]
        else:
            picked = self.balancer.pick([c.state() for c in candidates], view)
            chosen = next(c for c in candidates if c.name == picked.name)
        chosen.in_flight += 1
        chosen.pending_prefill_tokens += tokens
        chosen.breaker.on_attempt()
        return Lease(self, chosen, tokens)

    def report_success(self, endpoint: Endpoint, latency_ms: float) -> None:
        endpoint.consecutive_failures = 0
        endpoint.breaker.on_success()
        endpoint.ewma_latency_ms += _EWMA * (latency_ms - endpoint.ewma_latency_ms)

    def report_failure(self, endpoint: Endpoint) -> None:
        """Passive outlier ejection: enough consecutive failures mark the replica unhealthy."""
        endpoint.consecutive_failures += 1
        endpoint.breaker.on_failure()
        if (
            endpoint.consecutive_failures >= self.config.outlier.consecutive_failures
            and self.config.health.enabled
        ):
            endpoint.healthy = False
