"""A minimal HTTP/1.1 server connection (keep-alive, in-order answers) for the fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
_MAX_HEAD = 64 * 1024


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[["Connection"], Coroutine[Any, Any, None]]
Dispatch = Callable[[Request], "bytes | Handler"]


def response_bytes(status: int, body: bytes, content_type: str = "application/json",
                   extra: tuple[tuple[str, str], ...] = (), close: bool = False) -> bytes:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"content-type: {content_type}", f"content-length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in extra]
    if close:
        head.append("connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
               b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")


class Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive connection: parses requests in order, answers them in order."""

    def __init__(self, dispatch: Dispatch, on_disconnect: Callable[[], None]) -> None:
        self.dispatch = dispatch
        self.on_disconnect = on_disconnect
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.task is not None and not self.task.done():
            self.on_disconnect()
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.task is None:
            self._process()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.closed = True

    def _process(self) -> None:
        while not self.closed:
            request = self._parse()
            if request is None:
                return
            answer = self.dispatch(request)
            if isinstance(answer, bytes):
                self.write(answer)
                continue
            self.task = asyncio.get_running_loop().create_task(answer(self))
            self.task.add_done_callback(self._handler_done)
            return

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self.task = None
        if not task.cancelled() and task.exception() is not None and self.transport:
            self.transport.abort()
            return
        if not self.closed and self.buffer:
            self._process()

    def _parse(self) -> Request | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > _MAX_HEAD:
                self.abort()
            return None
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parsed = dechunk(self.buffer, start)
            if parsed is None:
                return None
            body, consumed = parsed
        else:
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < start + length:
                return None
            body, consumed = bytes(self.buffer[start:start + length]), start + length
        del self.buffer[:consumed]
        return Request(method, path.split("?", 1)[0], headers, body)


def dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    body = bytearray()
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        data_start = line_end + 2
        if len(buffer) < data_start + size + 2:
            return None
        if size == 0:
            trailer_end = buffer.find(b"\r\n", data_start)
            return (bytes(body), trailer_end + 2) if trailer_end >= 0 else None
        body += buffer[data_start:data_start + size]
        position = data_start + size + 2
