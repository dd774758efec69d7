"""The ASGI app (Starlette). Thin: HTTP in, Gateway.handle(), HTTP out."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from switchyard.cache.admin import admin_routes
from switchyard.config.schema import SwitchyardConfig
from switchyard.errors import (
    PayloadTooLargeError,
    SwitchyardError,
    UnsupportedMediaTypeError,
)
from switchyard.gateway import Gateway, Kind
from switchyard.local.fleet import LocalFleet
from switchyard.routing.explain import decision_to_dict
from switchyard.server.fast_path import (
    InferenceFastPath,
    check_request_headers,
    error_response,
)

logger = logging.getLogger(__name__)


def _json(status: int, payload: object, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


def _error(exc: SwitchyardError) -> Response:
    result = error_response(exc)
    return Response(result.body, result.status, result.headers, media_type=result.content_type)


async def read_body(request: Request, limit: int) -> bytes:
    """Read a JSON body, enforcing content type and size before buffering it all."""
    check_request_headers(request.headers, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    config: SwitchyardConfig, config_dir: Path | None = None
) -> InferenceFastPath:
    gateway = Gateway(config, config_dir)
    fleet = LocalFleet.from_config(config)  # llama.cpp servers this gateway runs itself
    limit = config.server.max_body_bytes

    async def inference_not_allowed(request: Request) -> Response:
        # POSTs to the inference routes never get here (InferenceFastPath answers them);
        # Starlette answers other methods with 405 before calling this.
        return _error(UnsupportedMediaTypeError("unreachable"))

    async def route(request: Request) -> Response:
        try:
            raw = await read_body(request, limit)
            kind: Kind = "completion" if b'"prompt"' in raw and b'"messages"' not in raw else "chat"
            view, signals, decision = await gateway.route(raw, request.headers, kind)
        except SwitchyardError as exc:
            return _error(exc)
        return _json(200, {"request_id": view.request_id, **decision_to_dict(decision, signals)})

    async def models(request: Request) -> Response:
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "switchyard"}
            for name in gateway.model_names()
        ]
        return _json(200, {"object": "list", "data": data})

    async def healthz(request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready = gateway.ready()
        return _json(200 if ready else 503, {"status": "ready" if ready else "not ready"})

    async def metrics(request: Request) -> Response:
        return Response(gateway.metrics.render(), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await fleet.start()  # returns once every local model server answers
        try:
            await gateway.start()
            try:
                yield
            finally:
                await gateway.aclose()
        finally:
            await fleet.aclose()

    routes = [
        Route("/v1/chat/completions", inference_not_allowed, methods=["POST"]),
        Route("/v1/completions", inference_not_allowed, methods=["POST"]),
        Route("/v1/route", route, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if config.metrics.enabled:
        routes.append(Route("/metrics", metrics, methods=["GET"]))
    routes += admin_routes(lambda: gateway.cache.cache if gateway.cache else None,
                           config.cache.admin_key)
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=_handlers())
    app.state.gateway = gateway
    app.state.fleet = fleet
    return InferenceFastPath(app, gateway, limit)


def _handlers() -> dict[Any, Any]:
    async def not_found(request: Request, exc: Exception) -> Response:
        return _json(404, {"error": {"message": f"no route for {request.url.path}",
                                     "type": "invalid_request_error", "param": None,
                                     "code": "not_found"}})

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _json(405, {"error": {"message": f"method {request.method} not allowed",
                                     "type": "invalid_request_error", "param": None,
                                     "code": "method_not_allowed"}})

    async def internal(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return _json(500, {"error": {"message": "internal error", "type": "internal_error",
                                     "param": None, "code": None}})

    return {404: not_found, 405: not_allowed, 500: internal}
