"""Send one request to a model's pool: balancer choice, retries with backoff, replica failover,
and the decision's model fallback chain. Streaming may fail over until the first byte only."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any

import orjson

from switchyard.config.pools import RetryConfig
from switchyard.config.schema import ModelConfig
from switchyard.errors import (
    NoHealthyEndpointError,
    OverloadedError,
    SwitchyardError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from switchyard.observability.metrics import Metrics
from switchyard.pools.backend import OpenAIBackend, UpstreamReply, UpstreamStream
from switchyard.pools.pool import Endpoint, Lease, Pool
from switchyard.types import RequestView


@dataclass(slots=True)
class Attempts:
    """Bookkeeping shared across the whole fallback chain of one request."""

    started: float
    count: int = 0
    endpoint: str = ""


@dataclass(slots=True)
class Served:
    """A successful non-streaming answer."""

    model: ModelConfig
    reply: UpstreamReply
    payload: dict[str, Any]
    endpoint: str


@dataclass(slots=True)
class Opened:
    """A streaming answer whose first chunk has arrived; the lease is released by the caller."""

    model: ModelConfig
    stream: UpstreamStream
    lease: Lease
    pool: Pool
    endpoint: str
    opened_at: float


def backoff_delay(retry: RetryConfig, attempt: int, rng: random.Random) -> float:
    base: float = min(retry.backoff_max_s, retry.backoff_initial_s * (2.0**attempt))
    return max(0.0, base * (1.0 + retry.jitter * (2.0 * rng.random() - 1.0)))


class Dispatcher:
    def __init__(
        self,
        models: Mapping[str, ModelConfig],
        pools: Mapping[str, Pool],
        backend: OpenAIBackend,
        metrics: Metrics,
    ) -> None:
        self._models = models
        self._pools = pools
        self._backend = backend
        self._metrics = metrics
        self._rng = random.Random()

    def payload_for(self, body: dict[str, Any], model: ModelConfig) -> bytes:
        body["model"] = model.upstream_name or model.name
        return orjson.dumps(body)

    async def send(
        self, view: RequestView, body: dict[str, Any], models: Sequence[str], path: str,
        attempts: Attempts, tokens: int,
    ) -> Served | Opened:
        """Try each model in order; within a model, retry/fail over per its pool's policy."""
        last: SwitchyardError | None = None
        for name in models:
            model = self._models[name]
            pool = self._pools[model.pool]
            try:
                return await self._send_to_pool(view, body, model, pool, path, attempts, tokens)
            except (NoHealthyEndpointError, OverloadedError) as exc:
                last = exc
            except UpstreamError as exc:
                if not exc.retryable:
                    raise
                last = exc
        raise last or NoHealthyEndpointError("no model could serve the request")

    async def _send_to_pool(
        self, view: RequestView, body: dict[str, Any], model: ModelConfig, pool: Pool, path: str,
        attempts: Attempts, tokens: int,
    ) -> Served | Opened:
        payload = self.payload_for(body, model)
        retry = pool.config.retry
        deadline = attempts.started + pool.config.timeouts.total_s
        tried: list[str] = []
        last: UpstreamError | None = None
        for attempt in range(retry.attempts):
            lease = await pool.acquire(view, tried, tokens)
            endpoint = lease.endpoint
            attempts.count += 1
            attempts.endpoint = endpoint.name
            if attempts.count > 1:
                self._metrics.retries.labels(model.name).inc()
            tried.append(endpoint.name)
            started = monotonic()
            try:
                result = await self._attempt(view, payload, model, pool, lease, path, deadline)
            except UpstreamError as exc:
                lease.release()
                self._metrics.upstream_errors.labels(endpoint.name, exc.kind).inc()
                if not (isinstance(exc, UpstreamStatusError) and exc.upstream_status == 429):
                    self.endpoint_failed(pool, endpoint)
                if not exc.retryable:
                    raise
                last = exc
                delay = self._retry_delay(retry, attempt, exc, len(tried), len(pool.endpoints))
                if delay is None or monotonic() + delay >= deadline:
                    break
                if attempt + 1 < retry.attempts and delay > 0:
                    await asyncio.sleep(delay)
                continue
            except BaseException:  # cancelled (client gone, shutdown): free the slot
                lease.release()
                raise
            if isinstance(result, Served):  # a stream is judged when it ends (Gateway._relay)
                pool.report_success(endpoint, (monotonic() - started) * 1000.0)
            return result
        raise last or NoHealthyEndpointError(f"no replica of {model.name!r} answered")

    def endpoint_failed(self, pool: Pool, endpoint: Endpoint) -> None:
        """Count a failure for breaker and passive ejection; keep the health gauge truthful."""
        pool.report_failure(endpoint)
        if not endpoint.healthy:
            self._metrics.endpoint_healthy.labels(pool.name, endpoint.name).set(0)

    def _retry_delay(
        self, retry: RetryConfig, attempt: int, exc: UpstreamError, tried: int, replicas: int
    ) -> float | None:
        """Backoff before the next attempt; None = give up on this model."""
        delay = backoff_delay(retry, attempt, self._rng)
        if retry.honour_retry_after and exc.retry_after is not None and tried >= replicas:
            if exc.retry_after > retry.max_retry_after_s:
                return None
            delay = max(delay, exc.retry_after)
        return delay

    async def _attempt(
        self, view: RequestView, payload: bytes, model: ModelConfig, pool: Pool, lease: Lease,
        path: str, deadline: float,
    ) -> Served | Opened:
        target = lease.endpoint.target
        remaining = deadline - monotonic()
        if remaining <= 0:
            raise NoHealthyEndpointError("total timeout exhausted before an upstream answered")
        endpoint_name = lease.endpoint.name
        if view.stream:
            stream = await self._bounded(self._backend.open_stream(target, path, payload),
                                         remaining, target.attempt_timeout_s)
            lease.first_byte()
            return Opened(model, stream, lease, pool, endpoint_name, monotonic())
        try:
            reply = await self._bounded(self._backend.complete(target, path, payload),
                                        remaining, target.attempt_timeout_s)
        finally:
            lease.release()
        try:
            parsed = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("upstream answered with invalid JSON") from None
        if not isinstance(parsed, dict):
            raise UpstreamProtocolError("upstream answered with a non-object JSON body")
        return Served(model, reply, parsed, endpoint_name)

    @staticmethod
    async def _bounded(awaitable: Any, remaining: float, attempt_timeout: float) -> Any:
        """Await with the request's remaining total budget when it is tighter than one attempt."""
        if remaining >= attempt_timeout:
            return await awaitable
        try:
            async with asyncio.timeout(remaining):
                return await awaitable
        except TimeoutError:
            raise UpstreamTimeoutError("total request timeout exceeded") from None
