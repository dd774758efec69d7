"""Active health checks: probe every replica periodically, flip health on thresholds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from switchyard.pools.backend import OpenAIBackend
from switchyard.pools.pool import Endpoint, Pool

logger = logging.getLogger(__name__)

HealthListener = Callable[[Endpoint], None]


class HealthChecker:
    """One background task per pool; owned and cancelled by the gateway lifespan."""

    def __init__(self, pool: Pool, backend: OpenAIBackend, on_change: HealthListener) -> None:
        self._pool = pool
        self._backend = backend
        self._on_change = on_change
        self._successes: dict[str, int] = {}
        self._failures: dict[str, int] = {}

    async def check_once(self) -> None:
        health = self._pool.config.health
        endpoints = self._pool.endpoints
        results = await asyncio.gather(
            *(self._backend.probe(e.target.url + health.path, health.timeout_s) for e in endpoints)
        )
        for endpoint, ok in zip(endpoints, results, strict=True):
            self._apply(endpoint, ok)

    def _apply(self, endpoint: Endpoint, ok: bool) -> None:
        health = self._pool.config.health
        name = endpoint.name
        if ok:
            self._failures[name] = 0
            self._successes[name] = self._successes.get(name, 0) + 1
            if not endpoint.healthy and self._successes[name] >= health.success_threshold:
                endpoint.healthy = True
                endpoint.consecutive_failures = 0
                logger.info("endpoint %s/%s is healthy again", self._pool.name, name)
                self._on_change(endpoint)
        else:
            self._successes[name] = 0
            self._failures[name] = self._failures.get(name, 0) + 1
            if endpoint.healthy and self._failures[name] >= health.failure_threshold:
                endpoint.healthy = False
                logger.warning("endpoint %s/%s failed health checks", self._pool.name, name)
                self._on_change(endpoint)

    async def run(self) -> None:
        interval = self._pool.config.health.interval_s
        while True:
            try:
                await self.check_once()
            except Exception:  # a probe bug must not kill the loop
                logger.exception("health check of pool %s failed", self._pool.name)
            await asyncio.sleep(interval)
