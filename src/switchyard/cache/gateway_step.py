"""The cache's two steps in the gateway's request flow, kept here so `gateway.py` stays short.

    step 2  `lookup(view, body)` → LookupResult; on a hit `hit_response(...)` gives the body
            (JSON) or the SSE events to send.
    step 6  `store_reply(ticket, body)` / `StreamCapture` + `store_stream(ticket, capture)`
            store in the background once the response completed normally.

Metrics go to the gateway's registry; entry counts are refreshed every `_GAUGE_REFRESH_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from switchyard.cache.base import CacheScope, LookupResult
from switchyard.cache.factory import build_cache
from switchyard.cache.replay import assemble_sse, replay_json, replay_sse
from switchyard.cache.semantic import ResponseCache
from switchyard.config.cache import CacheConfig
from switchyard.embed.base import Embedder
from switchyard.types import Signals, Usage

logger = logging.getLogger(__name__)
_GAUGE_REFRESH_S = 15.0


@dataclass(slots=True)
class CacheTicket:
    """What step 6 needs to store the answer of a request that missed in step 2."""

    view: Any
    body: Mapping[str, Any]
    lookup: LookupResult
    decision: str | None = None
    labels: tuple[str, ...] = ()

    def routed(self, decision: str, signals: Signals) -> None:
        self.decision = decision
        labels = [label for result in signals.values() for label in result.labels]
        labels += [name for name, result in signals.items() if result.labels]
        self.labels = tuple(dict.fromkeys(labels))


@dataclass(slots=True)
class StreamCapture:
    """Collects a relayed SSE stream (up to a byte limit) to store it once it completed."""

    limit: int
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    overflow: bool = False

    def add(self, chunk: bytes) -> None:
        if self.overflow:
            return
        self.size += len(chunk)
        if self.size > self.limit:
            self.overflow = True
            self.chunks.clear()
            return
        self.chunks.append(chunk)


def cached_usage(body: bytes) -> Usage:
    """Token usage recorded in a cached body (what a hit saved)."""
    try:
        usage = orjson.loads(body).get("usage") or {}
        return Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return Usage()


def cached_model(body: bytes) -> str:
    try:
        model = orjson.loads(body).get("model")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return model if isinstance(model, str) else ""


class GatewayCache:
    def __init__(self, cache: ResponseCache, metrics: Any) -> None:
        self.cache = cache
        self._metrics = metrics
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refresher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, cfg: CacheConfig, embedder: Embedder | None, metrics: Any,
                   config_dir: Path | None = None) -> GatewayCache:
        step = cls(await build_cache(cfg, embedder, config_dir), metrics)
        step._refresher = asyncio.create_task(step._refresh_gauges(), name="cache-gauges")
        return step

    # -- step 2 ----------------------------------------------------------------------------
    async def lookup(self, view: Any, body: Mapping[str, Any]) -> CacheTicket:
        result = await self.cache.lookup(view, CacheScope(tenant=view.tenant, body=body))
        m = self._metrics
        m.cache_lookups.labels(result.status, result.match or "none").inc()
        m.cache_lookup_latency.labels(result.status).observe(result.latency_ms / 1e3)
        if result.reason == "backend_unavailable":
            m.cache_backend_errors.inc()
        return CacheTicket(view=view, body=body, lookup=result)

    def hit_response(self, ticket: CacheTicket, request_id: str) -> bytes | list[bytes]:
        """The JSON body, or the SSE events for a streaming request."""
        stored = ticket.lookup.response or b""
        if not ticket.view.stream:
            return replay_json(stored, request_id)
        options = ticket.body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return replay_sse(stored, request_id, include_usage)

    # -- step 6 ----------------------------------------------------------------------------
    def _scope(self, ticket: CacheTicket) -> CacheScope:
        return CacheScope(tenant=ticket.view.tenant, decision=ticket.decision,
                          labels=ticket.labels, body=ticket.body)

    def store_reply(self, ticket: CacheTicket, status: int, body: bytes) -> None:
        if status == 200 and ticket.lookup.status == "miss":
            self._spawn(self._store(ticket, body))

    def capture(self, ticket: CacheTicket | None) -> StreamCapture | None:
        if ticket is None or ticket.lookup.status != "miss":
            return None
        return StreamCapture(limit=2 * self.cache.config.max_response_bytes + 65536)

    def store_stream(self, ticket: CacheTicket, capture: StreamCapture) -> None:
        """Call only after the stream completed normally (no upstream error, no disconnect)."""
        if capture.overflow:
            return
        body = assemble_sse(capture.chunks)
        if body is not None:
            self._spawn(self._store(ticket, body))

    async def _store(self, ticket: CacheTicket, body: bytes) -> None:
        stored = await self.cache.store(ticket.view, self._scope(ticket), body, ticket.lookup)
        self._metrics.cache_stores.labels("stored" if stored else "skipped").inc()

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for pending background stores (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _refresh_gauges(self) -> None:
        while True:
            await self.update_gauges()
            await asyncio.sleep(_GAUGE_REFRESH_S)

    async def update_gauges(self) -> None:
        stats = await self.cache.stats()
        if stats.store is not None:
            self._metrics.cache_entries.set(stats.store.entries)
            self._metrics.cache_bytes.set(stats.store.bytes)
            self._metrics.cache_evictions.set(stats.store.evictions + stats.store.expirations)

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self.drain()
        await self.cache.aclose()
