"""Gateway.handle(): the request flow, and the only place it is written.

    1. guard     auth/tenant, body already size-checked by the server
    2. cache     (not yet configured)
    3. signals   evaluate the signals the policy references
    4. decide    pure rule engine -> Decision
    5. dispatch  pool: balancer, retries, failover, model fallback chain
    6. record    RouteRecord, metrics, x-switchyard-* headers
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic, time
from typing import Any, Literal

import orjson

from switchyard.cache.gateway_step import CacheTicket, GatewayCache, cached_model, cached_usage
from switchyard.config.schema import ModelConfig, SwitchyardConfig
from switchyard.errors import (
    AuthenticationError,
    ContentPolicyError,
    ModelNotFoundError,
    SwitchyardError,
    UpstreamError,
)
from switchyard.observability.metrics import Metrics
from switchyard.observability.records import RecordWriter
from switchyard.pools.backend import OpenAIBackend
from switchyard.pools.dispatcher import Attempts, Dispatcher, Opened, Served
from switchyard.pools.health import HealthChecker
from switchyard.pools.pool import Endpoint, Pool
from switchyard.protocol import (
    StreamUsage,
    build_view,
    estimate_tokens,
    parse_body,
    sse_error_event,
    usage_from,
)
from switchyard.routing.engine import RoutingPolicy, decide
from switchyard.signals.base import SignalContext
from switchyard.signals.runner import SignalRunner
from switchyard.types import Action, Decision, RequestView, RouteRecord, Signals, Usage

logger = logging.getLogger(__name__)

Kind = Literal["chat", "completion"]
_PATHS: dict[Kind, str] = {"chat": "/chat/completions", "completion": "/completions"}


@dataclass(slots=True)
class GatewayResponse:
    """What the server sends back: a body or a byte stream, plus headers."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    content_type: str = "application/json"


@dataclass(slots=True)
class _Context:
    request_id: str
    started: float
    wall: float
    tenant: str = "default"
    decision: str = ""
    model: str = ""
    attempts: Attempts = field(default_factory=lambda: Attempts(started=monotonic()))
    prompt: str | None = None
    cache: CacheTicket | None = None
    predictions: str = ""
    wants_usage: bool = False

    def headers(self) -> dict[str, str]:
        headers = {
            "x-switchyard-request-id": self.request_id,
            "x-switchyard-model": self.model,
            "x-switchyard-decision": self.decision,
            "x-switchyard-endpoint": self.attempts.endpoint,
            **(self.cache.lookup.headers() if self.cache is not None else {}),
        }
        if self.predictions:
            headers["x-switchyard-predictions"] = self.predictions
        return headers


class Gateway:
    def __init__(
        self, config: SwitchyardConfig, config_dir: Path | None = None,
        backend: OpenAIBackend | None = None,
    ) -> None:
        self.config = config
        self.models: dict[str, ModelConfig] = config.model_by_name()
        # a cached body names the model as the upstream did: map it back to the configured one
        self._by_upstream_name = {
            m.upstream_name: m.name for m in config.models if m.upstream_name is not None
        }
        self.pools = {p.name: Pool(p) for p in config.pools}
        self.policy = RoutingPolicy.from_config(config.routing)
        self.signal_context = SignalContext(config_dir=config_dir or Path.cwd())
        self.signals = SignalRunner.from_config(config.routing, self.signal_context)
        self.metrics = Metrics()
        self.backend = backend or OpenAIBackend()
        self.dispatcher = Dispatcher(self.models, self.pools, self.backend, self.metrics)
        self.records = RecordWriter(config.records) if config.records.enabled else None
        self._decision_names = {d.name for d in config.routing.decisions}
        self._redactors = self._pii_redactors()
        self._tasks: list[asyncio.Task[None]] = []
        self._api_keys = config.server.api_keys
        self._tenant_header = config.server.tenant_header.lower()
        self.cache: GatewayCache | None = None
        for pool in self.pools.values():
            for endpoint in pool.endpoints:
                self._health_changed(endpoint)

    # -- lifecycle ---------------------------------------------------------------------------
    def _pii_redactors(self) -> tuple[object, ...]:
        """PII signals that may mask the forwarded body (imported only when configured)."""
        if not any(s.type == "pii" for s in self.config.routing.signals):
            return ()
        from switchyard.signals.pii import pii_signals

        return tuple(pii_signals(self.signals.signals.values()))

    async def _redact(
        self, signals: Signals, request_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        from switchyard.signals.pii import redact_for_upstream

        return await redact_for_upstream(self._redactors, signals, request_id, body)

    async def prepare_signals(self) -> None:
        """Wait until every signal's model is loaded, so first requests do not time out."""
        for signal in self.signals.signals.values():
            ready = getattr(signal, "ready", None)
            if ready is not None:
                await ready()

    async def start(self) -> None:
        await self.prepare_signals()
        if self.records is not None:
            self.records.start()
        for pool in self.pools.values():
            if pool.config.health.enabled:
                checker = HealthChecker(pool, self.backend, self._health_changed)
                self._tasks.append(asyncio.create_task(checker.run(), name=f"health-{pool.name}"))
        if self.config.cache.enabled:
            from switchyard.signals.semantic import KEY_MAX_TOKENS, shared_embeddings

            embedder = None if self.config.cache.mode == "exact" else shared_embeddings(
                self.signal_context, KEY_MAX_TOKENS)
            self.cache = await GatewayCache.open(
                self.config.cache, embedder, self.metrics, self.signal_context.config_dir)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.cache is not None:
            await self.cache.aclose()
        await self.close_signal_resources()
        await self.backend.aclose()
        if self.records is not None:
            await self.records.aclose()

    async def close_signal_resources(self) -> None:
        """Close what signal factories shared (embedders, batchers, worker pools)."""
        for resource in list(self.signal_context.resources.values()):
            close = getattr(resource, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    logger.exception("closing signal resource %r failed", resource)
        self.signal_context.resources.clear()

    def _health_changed(self, endpoint: Endpoint) -> None:
        self.metrics.endpoint_healthy.labels(endpoint.pool_name, endpoint.name).set(
            1 if endpoint.healthy else 0
        )

    # -- read-only views -----------------------------------------------------------------------
    def model_names(self) -> list[str]:
        return [*self.models, "auto", *sorted(self._decision_names)]

    def ready(self) -> bool:
        default = self.models[self.policy.default_models[0]]
        return self.pools[default.pool].any_available()

    # -- request flow --------------------------------------------------------------------------
    def _tenant(self, headers: Mapping[str, str]) -> str:
        if self._api_keys:
            auth = headers.get("authorization", "")
            key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            tenant = self._api_keys.get(key)
            if tenant is None:
                raise AuthenticationError("invalid or missing API key")
            return tenant
        return headers.get(self._tenant_header) or "default"

    def _check_model(self, requested: str) -> None:
        if requested in self.models or requested == "auto" or requested in self._decision_names:
            return
        raise ModelNotFoundError(
            f"model {requested!r} does not exist; valid models: {', '.join(self.model_names())}",
            param="model",
        )

    async def route(
        self, raw: bytes, headers: Mapping[str, str], kind: Kind = "chat"
    ) -> tuple[RequestView, Signals, Decision]:
        """Steps 1, 3 and 4 only: what would happen, without calling a model."""
        ctx = _Context(uuid.uuid4().hex, monotonic(), time())
        ctx.tenant = self._tenant(headers)
        body = parse_body(raw)
        view = build_view(body, kind, ctx.request_id, ctx.tenant, headers)
        self._check_model(view.model)
        signals = await self.signals.evaluate(view)
        return view, signals, decide(signals, self.policy, view.model)

    async def handle(self, kind: Kind, raw: bytes, headers: Mapping[str, str]) -> GatewayResponse:
        ctx = _Context(uuid.uuid4().hex, monotonic(), time())
        stream = False
        try:
            ctx.tenant = self._tenant(headers)
            body = parse_body(raw)
            view = build_view(body, kind, ctx.request_id, ctx.tenant, headers)
            stream = view.stream
            options = body.get("stream_options")
            ctx.wants_usage = stream and isinstance(options, dict) and bool(
                options.get("include_usage"))
            self._check_model(view.model)
            if self.config.records.include_prompts:
                ctx.prompt = view.conversation_text
            if self.cache is not None:
                ctx.cache = await self.cache.lookup(view, body)
                if ctx.cache.lookup.hit:
                    return self._cache_hit(ctx, self.cache, ctx.cache)
            signals = await self.signals.evaluate(view)
            decision = decide(signals, self.policy, view.model)
            ctx.decision = decision.name
            if decision.predictions:
                ctx.predictions = ",".join(
                    f"{k}={v:.4g}" for k, v in decision.predictions.items()
                )
            if ctx.cache is not None:
                ctx.cache.routed(decision.name, signals)
            if decision.action == Action.BLOCK:
                raise ContentPolicyError(decision.message, code="content_policy_violation")
            if self._redactors:
                body = await self._redact(signals, view.request_id, body)
            tokens = estimate_tokens(view.conversation_text)
            result = await self.dispatcher.send(
                view, body, decision.models, _PATHS[kind], ctx.attempts, tokens
            )
        except SwitchyardError as exc:
            return self._error(ctx, exc, stream)
        except asyncio.CancelledError:
            self._finish(ctx, 499, Usage(), None, stream, error="client_disconnected")
            raise
        except Exception as exc:  # never a traceback to the client
            logger.exception("unexpected error in request %s", ctx.request_id)
            return self._error(ctx, SwitchyardError(f"internal error: {type(exc).__name__}"),
                               stream)
        ctx.model = result.model.name
        if isinstance(result, Served):
            return self._served(ctx, result, tokens)
        return self._streamed(ctx, result, tokens)

    def _error(self, ctx: _Context, exc: SwitchyardError, stream: bool) -> GatewayResponse:
        status = exc.status
        body = orjson.dumps(exc.envelope())
        if isinstance(exc, UpstreamError) and not exc.retryable:
            # a non-retryable upstream 4xx: pass the upstream's own answer through
            upstream_body = getattr(exc, "body", b"")
            if upstream_body.startswith(b"{"):
                body = upstream_body
        headers = ctx.headers()
        if exc.retry_after is not None:
            headers["retry-after"] = str(max(1, round(exc.retry_after)))
        self._finish(ctx, status, Usage(), None, stream, error=exc.code or exc.error_type)
        return GatewayResponse(status, headers, body)

    def _cache_hit(self, ctx: _Context, cache: GatewayCache, ticket: CacheTicket
                   ) -> GatewayResponse:
        stored = ticket.lookup.response or b""
        ctx.decision = "cache"
        named = cached_model(stored)
        ctx.model = named if named in self.models else self._by_upstream_name.get(named, named)
        reply = cache.hit_response(ticket, ctx.request_id)
        self._finish(ctx, 200, cached_usage(stored), None, ticket.view.stream)
        if isinstance(reply, bytes):
            return GatewayResponse(200, ctx.headers(), reply)

        async def replay() -> AsyncIterator[bytes]:
            for event in reply:
                yield event

        return GatewayResponse(200, ctx.headers(), stream=replay(),
                               content_type="text/event-stream")

    def _served(self, ctx: _Context, result: Served, tokens: int) -> GatewayResponse:
        usage = usage_from(result.payload) or Usage(tokens, 0)
        if self.cache is not None and ctx.cache is not None:
            self.cache.store_reply(ctx.cache, result.reply.status, result.reply.body)
        self._finish(ctx, result.reply.status, usage, None, False)
        return GatewayResponse(
            result.reply.status, ctx.headers(), result.reply.body,
            content_type=result.reply.content_type,
        )

    def _streamed(self, ctx: _Context, opened: Opened, tokens: int) -> GatewayResponse:
        ttft = opened.opened_at - ctx.started
        self.metrics.ttft.labels(ctx.model).observe(ttft)
        return GatewayResponse(
            200, ctx.headers(), stream=self._relay(ctx, opened, tokens, ttft),
            content_type=opened.stream.content_type,
        )

    async def _relay(
        self, ctx: _Context, opened: Opened, tokens: int, ttft: float
    ) -> AsyncIterator[bytes]:
        """Pass upstream bytes through unchanged; a late failure ends with an SSE error."""
        tracker = StreamUsage(tokens, ctx.wants_usage)
        status, error = 200, None
        capture = self.cache.capture(ctx.cache) if self.cache is not None else None
        try:
            if capture is not None:
                capture.add(opened.stream.first)
            yield tracker.feed(opened.stream.first)
            async for chunk in opened.stream.chunks():
                if capture is not None:
                    capture.add(chunk)
                yield tracker.feed(chunk)
            if capture is not None and self.cache is not None and ctx.cache is not None:
                self.cache.store_stream(ctx.cache, capture)  # completed normally only
            elapsed_ms = (monotonic() - opened.opened_at) * 1000.0
            opened.pool.report_success(opened.lease.endpoint, elapsed_ms)
        except UpstreamError as exc:
            status, error = 502, exc.kind
            self.dispatcher.endpoint_failed(opened.pool, opened.lease.endpoint)
            self.metrics.upstream_errors.labels(opened.endpoint, exc.kind).inc()
            yield sse_error_event(f"upstream failed mid-stream: {exc.message}", exc.code or "")
        except (asyncio.CancelledError, GeneratorExit):
            if not tracker.done:  # else the client already had the whole answer
                status, error = 499, "client_disconnected"
            raise
        finally:
            opened.stream.close()
            opened.lease.release()
            self._finish(ctx, status, tracker.usage(), ttft, True, error=error)

    def _finish(
        self, ctx: _Context, status: int, usage: Usage, ttft: float | None, stream: bool,
        error: str | None = None,
    ) -> None:
        latency = monotonic() - ctx.started
        model = self.models.get(ctx.model)
        cost = model.cost_usd(usage.prompt_tokens, usage.completion_tokens) if model else 0.0
        cache_status = ctx.cache.lookup.status if ctx.cache is not None else None
        cost_saved = 0.0
        if cache_status == "hit":  # served from the cache: nothing spent upstream
            cost_saved, cost = cost, 0.0
        self.metrics.record_request(
            ctx.model if model is not None else None, ctx.decision, status, latency,
            usage.prompt_tokens, usage.completion_tokens, cost,
        )
        if self.records is None:
            return
        self.records.add(RouteRecord(
            request_id=ctx.request_id, time=ctx.wall, tenant=ctx.tenant, decision=ctx.decision,
            model=ctx.model, endpoint=ctx.attempts.endpoint, attempts=ctx.attempts.count,
            status=status, latency_ms=round(latency * 1000.0, 3),
            ttft_ms=None if ttft is None else round(ttft * 1000.0, 3),
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            cost_usd=cost, stream=stream, error=error, prompt=ctx.prompt, cache=cache_status,
            cost_saved_usd=cost_saved,
        ))


def describe_decision(decision: Decision) -> dict[str, Any]:
    return {
        "name": decision.name,
        "action": decision.action.value,
        "models": list(decision.models),
        "reason": decision.reason,
    }
