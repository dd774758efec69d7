"""A small, fast fake OpenAI-compatible HTTP/1.1 server (raw asyncio, keep-alive).

Behaviours (`Behaviour.mode`):
    fixed       200 JSON answer with usage; `stream: true` requests get SSE chunks
    slow        like fixed after `delay_s` (and `chunk_delay_s` between stream chunks)
    fail        `status` (default 500) with an OpenAI error body
    rate_limit  429 with `Retry-After: <retry_after>`
    garbage     200 with a body that is not JSON (or `body`)
    drop        streams `drop_after` chunks then closes the connection (non-stream: closes
                without answering)
    down        every path, health included, answers 503

Health path `GET /v1/models` answers 200 unless the mode is `down`.
A queue of one-shot behaviours (`script`) is consumed one per inference request before the
default. Control at runtime from Python (`backend.behaviour = ...`) or over HTTP:
    POST /_fake/behaviour  {"mode": ..., ..., "script": [{...}, ...]}
    GET  /_fake/requests   recorded requests (JSON)      POST /_fake/reset

Run as a process: `python -m tests.fakes.server --port P --mode fixed`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gzip
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.fakes import payloads
from tests.fakes.http11 import STREAM_HEAD, Connection, Handler, Request, chunk, response_bytes

MODES = ("fixed", "slow", "fail", "rate_limit", "garbage", "drop", "down")
@dataclass
class Behaviour:
    mode: str = "fixed"
    delay_s: float = 0.0
    status: int = 500
    retry_after: str = "1"
    chunks: int = 5
    chunk_delay_s: float = 0.0
    first_chunk_gap_s: float = 0.0  # pause after the first SSE event (isolates time to first byte)
    drop_after: int = 2
    gzip: bool = False  # compress JSON answers when the client accepts gzip
    body: str = ""  # garbage mode: this body instead of the default non-JSON text
    content: str = "Hello from the fake backend."
    stream_content: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; modes: {MODES}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Behaviour:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    time: float

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass
class FakeBackend:
    """One fake replica. `start()` binds 127.0.0.1 (port 0 = any free port)."""

    name: str = "fake"
    behaviour: Behaviour = field(default_factory=Behaviour)
    models: list[str] = field(default_factory=lambda: ["fake-model"])
    record: bool = True
    script: deque[Behaviour] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    inference_count: int = 0
    health_count: int = 0
    disconnects: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _cache: dict[tuple[str, str, str], bytes] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _disconnected(self) -> None:
        self.disconnects += 1

    def set(self, mode: str = "fixed", **options: Any) -> None:
        """Replace the default behaviour (keeps any queued script)."""
        self.behaviour = Behaviour(mode=mode, **options)

    def queue(self, *behaviours: Behaviour) -> None:
        self.script.extend(behaviours)

    def inference_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and not r.path.startswith("/_")]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeBackend:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self.dispatch, self._disconnected), host, port,
            reuse_address=True, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    # -- request dispatch -------------------------------------------------------------------

    def dispatch(self, request: Request) -> bytes | Handler:
        """Answer synchronously (bytes) when possible; else return an async handler."""
        if request.path.startswith("/_fake/"):
            return self._admin(request)
        if self.record:
            self.requests.append(RecordedRequest(request.method, request.path, request.headers,
                                                 request.body, time.monotonic()))
        if request.method == "GET" and request.path.rstrip("/").endswith("/models"):
            self.health_count += 1
            if self.behaviour.mode == "down":
                return response_bytes(503, payloads.error_body("down", 503))
            return response_bytes(200, payloads.models_list(self.models))
        if request.method != "POST":
            return response_bytes(404, payloads.error_body("not found", 404))
        self.inference_count += 1
        behaviour = self.script.popleft() if self.script else self.behaviour
        return self._inference(request, behaviour)

    def _admin(self, request: Request) -> bytes:
        if request.path == "/_fake/requests":
            items = [{"method": r.method, "path": r.path, "headers": r.headers,
                      "body": r.body.decode("utf-8", "replace")} for r in self.requests]
            return response_bytes(200, orjson.dumps(
                {"requests": items, "disconnects": self.disconnects}))
        if request.path == "/_fake/reset":
            self.requests.clear()
            self.script.clear()
            self.disconnects = 0
            return response_bytes(200, b"{}")
        if request.path == "/_fake/behaviour":
            data = orjson.loads(request.body or b"{}")
            script = data.pop("script", [])
            self.behaviour = Behaviour.from_dict(data)
            self.script.extend(Behaviour.from_dict(s) for s in script)
            return response_bytes(200, b"{}")
        return response_bytes(404, payloads.error_body("unknown admin path", 404))

    def _inference(self, request: Request, behaviour: Behaviour) -> bytes | Handler:
        mode = behaviour.mode
        if mode in ("fail", "down"):
            status = 503 if mode == "down" else behaviour.status
            return response_bytes(status, payloads.error_body(f"fake {mode}", status))
        if mode == "rate_limit":
            return response_bytes(429, payloads.error_body("slow down", 429),
                                  extra=(("retry-after", behaviour.retry_after),))
        if mode == "garbage":
            return response_bytes(200, behaviour.body.encode() or b"<html>this is not json")
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return response_bytes(400, payloads.error_body("fake: bad json", 400))
        model = str(body.get("model", "")) if isinstance(body, dict) else ""
        chat = request.path.endswith("/chat/completions")
        if isinstance(body, dict) and body.get("stream"):
            options = body.get("stream_options")
            usage = isinstance(options, dict) and bool(options.get("include_usage"))
            build = payloads.chat_stream_events if chat else payloads.completion_stream_events
            text = behaviour.stream_content or behaviour.content
            events = build(model, text, self.name, behaviour.chunks, usage)
            return _stream_handler(events, behaviour)
        if mode == "drop":
            return _close_handler
        answer = self._answer(chat, model, behaviour.content)
        if behaviour.gzip and "gzip" in request.headers.get("accept-encoding", ""):
            make = payloads.chat_completion if chat else payloads.text_completion
            answer = response_bytes(200, gzip.compress(make(model, behaviour.content, self.name)),
                                    extra=(("content-encoding", "gzip"),))
        if mode == "slow":
            return _delayed_handler(answer, behaviour.delay_s)
        return answer

    def _answer(self, chat: bool, model: str, content: str) -> bytes:
        key = ("chat" if chat else "text", model, content)
        cached = self._cache.get(key)
        if cached is None:
            build = payloads.chat_completion if chat else payloads.text_completion
            cached = response_bytes(200, build(model, content, self.name))
            if len(self._cache) < 64:
                self._cache[key] = cached
        return cached


async def _close_handler(conn: Connection) -> None:
    conn.abort()


def _delayed_handler(answer: bytes, delay_s: float) -> Handler:
    async def handler(conn: Connection) -> None:
        await asyncio.sleep(delay_s)
        conn.write(answer)

    return handler


def _stream_handler(events: list[bytes], behaviour: Behaviour) -> Handler:
    async def handler(conn: Connection) -> None:
        if behaviour.mode == "slow" and behaviour.delay_s:
            await asyncio.sleep(behaviour.delay_s)
        conn.write(STREAM_HEAD)
        for index, event in enumerate(events):
            if behaviour.mode == "drop" and index >= behaviour.drop_after:
                await asyncio.sleep(0.01)
                conn.abort()
                return
            if index and behaviour.chunk_delay_s:
                await asyncio.sleep(behaviour.chunk_delay_s)
            if index == 1 and behaviour.first_chunk_gap_s:
                await asyncio.sleep(behaviour.first_chunk_gap_s)
            conn.write(chunk(event))
        conn.write(b"0\r\n\r\n")

    return handler


async def _serve(args: argparse.Namespace) -> None:
    content = args.content or Behaviour().content
    if args.content_bytes:
        content = "x" * args.content_bytes
    behaviour = Behaviour(mode=args.mode, delay_s=args.delay_s, chunks=args.chunks,
                          first_chunk_gap_s=args.first_chunk_gap_ms / 1e3,
                          content=content, stream_content=args.stream_content)
    backend = FakeBackend(name=args.name, behaviour=behaviour, models=args.models.split(","),
                          record=not args.no_record)
    await backend.start(args.host, args.port)
    print(f"fake backend {args.name} listening on {backend.url}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="fake OpenAI-compatible backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", default="fixed", choices=MODES)
    parser.add_argument("--name", default="fake")
    parser.add_argument("--models", default="fake-model")
    parser.add_argument("--delay-s", type=float, default=0.0)
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--first-chunk-gap-ms", type=float, default=0.0,
                        help="pause between the first SSE event and the rest")
    parser.add_argument("--content", default="")
    parser.add_argument("--content-bytes", type=int, default=0,
                        help="answer with this many characters of content")
    parser.add_argument("--stream-content", default="",
                        help="text of each stream chunk (default: the answer content)")
    parser.add_argument("--no-record", action="store_true", help="do not keep request bodies")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(_serve(args))
    except ImportError:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
