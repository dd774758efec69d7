"""The hot path: `POST /v1/chat/completions` and `/v1/completions` as plain ASGI.

Starlette's middleware stack, router and Request/Response objects cost more than the rest of
the gateway's own per-request work, so the two inference routes are answered here directly.
Every other route, the lifespan, and non-POST methods on these paths go to the Starlette app.
A client disconnect cancels the request's task (and with it the upstream call or stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import orjson
from starlette.applications import Starlette

from switchyard.errors import PayloadTooLargeError, SwitchyardError, UnsupportedMediaTypeError
from switchyard.gateway import Gateway, GatewayResponse, Kind

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

INFERENCE_PATHS: dict[str, Kind] = {"/v1/chat/completions": "chat", "/v1/completions": "completion"}
_STREAM_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


def check_request_headers(headers: Mapping[str, str], limit: int) -> None:
    """Content type must be JSON; a declared body size must be within the limit."""
    content_type = headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, got {content_type or 'none'!r}"
        )
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body exceeds the limit of {limit} bytes")


def error_response(exc: SwitchyardError) -> GatewayResponse:
    headers = {
        "x-switchyard-request-id": uuid.uuid4().hex,
        "x-switchyard-model": "",
        "x-switchyard-decision": "",
        "x-switchyard-endpoint": "",
    }
    if exc.retry_after is not None:
        headers["retry-after"] = str(max(1, round(exc.retry_after)))
    return GatewayResponse(exc.status, headers, orjson.dumps(exc.envelope()))


class InferenceFastPath:
    """ASGI app in front of Starlette; `state` is the Starlette app's state."""

    def __init__(self, app: Starlette, gateway: Gateway, limit: int) -> None:
        self.app = app
        self.state = app.state
        self._gateway = gateway
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            kind = INFERENCE_PATHS.get(scope["path"])
            if kind is not None:
                await self._inference(scope, receive, send, kind)
                return
        await self.app(scope, receive, send)

    async def _inference(self, scope: Scope, receive: Receive, send: Send, kind: Kind) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            check_request_headers(headers, self._limit)
            raw = await self._read_body(receive)
        except SwitchyardError as exc:
            await _send_whole(send, error_response(exc))
            return
        except ClientGone:
            return
        task = asyncio.current_task()
        assert task is not None
        state = {"gone": False, "done": False}

        async def watch() -> None:
            message = await receive()
            if message["type"] == "http.disconnect" and not state["done"]:
                state["gone"] = True
                task.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            result = await self._gateway.handle(kind, raw, headers)
            if result.stream is None:
                state["done"] = True
                watcher.cancel()
                await _send_whole(send, result)
            else:
                await _send_stream(send, result, state)
        except asyncio.CancelledError:
            if not state["gone"]:
                raise
            task.uncancel()  # the client left: nothing to answer, the upstream is cancelled
        finally:
            watcher.cancel()

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                raise PayloadTooLargeError(f"request body exceeds the limit of {self._limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _raw_headers(result: GatewayResponse, extra: list[tuple[bytes, bytes]]) -> list[
        tuple[bytes, bytes]]:
    raw = [(b"content-type", result.content_type.encode("latin-1")), *extra]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in result.headers.items()]
    return raw


async def _send_whole(send: Send, result: GatewayResponse) -> None:
    length = [(b"content-length", str(len(result.body)).encode())]
    await send({"type": "http.response.start", "status": result.status,
                "headers": _raw_headers(result, length)})
    await send({"type": "http.response.body", "body": result.body, "more_body": False})


async def _send_stream(send: Send, result: GatewayResponse, state: dict[str, bool]) -> None:
    assert result.stream is not None
    stream = result.stream
    await send({"type": "http.response.start", "status": result.status,
                "headers": _raw_headers(result, _STREAM_HEADERS)})
    try:
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        state["done"] = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
