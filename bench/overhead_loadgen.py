"""Closed-loop HTTP/1.1 load generator for bench/overhead.py (raw asyncio + uvloop).

`concurrency` keep-alive connections each send one POST, wait for the whole answer, repeat.
The same cheap client drives every target, so its own cost cancels out of the comparison.
Prints one JSON object: requests, errors, rps, latency and time-to-first-data percentiles (ms).

    python bench/overhead_loadgen.py --url http://127.0.0.1:8000/v1/chat/completions \
        --concurrency 16 --duration-s 3 --warmup-s 0.5 [--stream]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_STREAM_END = b"\r\n0\r\n\r\n"


class _ClientConnection(asyncio.Protocol):
    """Sends one request at a time and signals when its answer is complete."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.done: asyncio.Future[tuple[int, float]] | None = None
        self.first_data_at = 0.0
        self.header_end = -1
        self.content_length = -1
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("connection lost"))

    def send(self, request: bytes) -> asyncio.Future[tuple[int, float]]:
        self.buffer.clear()
        self.header_end = -1
        self.content_length = -1
        self.first_data_at = 0.0
        self.done = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        return self.done

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.header_end < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.header_end = end + 4
            lines = bytes(self.buffer[:end]).lower().split(b"\r\n")
            self.status = int(lines[0][9:12])
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip() == b"content-length":
                    self.content_length = int(value)
        if not self.first_data_at and self.buffer.find(b"data:", self.header_end) >= 0:
            self.first_data_at = time.perf_counter()
        body_bytes = len(self.buffer) - self.header_end
        complete = (body_bytes >= self.content_length if self.content_length >= 0
                    else self.buffer.endswith(_STREAM_END))
        if complete and self.done is not None and not self.done.done():
            first = self.first_data_at or time.perf_counter()
            self.done.set_result((self.status, first))


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class _Window:
    """Measurement window: opens after the warm-up, closes after `duration_s` once at least
    `min_requests` answers were counted (or at `hard_stop`, for very slow targets)."""

    opens: float
    closes: float
    hard_stop: float
    min_requests: int
    latencies: list[float] = field(default_factory=list)
    ttfbs: list[float] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    closed_at: float = 0.0
    answered: int = 0  # every answer, warm-up and tail included (for CPU cost per request)

    def is_over(self, now: float) -> bool:
        if self.closed_at:
            return True
        if now >= self.hard_stop or (now >= self.closes
                                     and len(self.latencies) >= self.min_requests):
            self.closed_at = now
        return bool(self.closed_at)


async def _worker(host: str, port: int, request: bytes, window: _Window) -> None:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(_ClientConnection, host, port)
    while not window.is_over(time.perf_counter()):
        started = time.perf_counter()
        try:
            status, first = await asyncio.wait_for(conn.send(request), 60.0)
        except (TimeoutError, ConnectionError):
            window.errors.append(0)
            if conn.transport is not None:
                conn.transport.close()
            _, conn = await loop.create_connection(_ClientConnection, host, port)
            continue
        finished = time.perf_counter()
        window.answered += 1
        if finished < window.opens or window.is_over(finished):
            continue  # answers completed during warm-up or after the window are not counted
        if status != 200:
            window.errors.append(status)
            continue
        window.latencies.append(finished - started)
        window.ttfbs.append(first - started)
    if conn.transport is not None:
        conn.transport.close()


def build_request(url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"POST {parts.path} HTTP/1.1", f"host: {host}:{port}",
             "content-type: application/json", f"content-length: {len(body)}",
             "accept: */*"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run_load(url: str, body: bytes, headers: dict[str, str], concurrency: int,
                   duration_s: float, warmup_s: float, min_requests: int = 50,
                   max_window_s: float = 0.0) -> dict[str, float]:
    host, port, request = build_request(url, body, headers)
    start = time.perf_counter()
    opens = start + warmup_s
    hard_stop = opens + max(max_window_s, duration_s)
    window = _Window(opens, opens + duration_s, hard_stop, min_requests)
    await asyncio.gather(*(_worker(host, port, request, window) for _ in range(concurrency)))
    latencies, ttfbs = sorted(window.latencies), sorted(window.ttfbs)
    return {
        "requests": len(latencies),
        "answered_total": window.answered,
        "errors": len(window.errors),
        "rps": len(latencies) / (window.closed_at - opens),
        "p50_ms": _percentile(latencies, 0.50) * 1e3,
        "p99_ms": _percentile(latencies, 0.99) * 1e3,
        "ttfb_p50_ms": _percentile(ttfbs, 0.50) * 1e3,
        "ttfb_p99_ms": _percentile(ttfbs, 0.99) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration-s", type=float, default=3.0)
    parser.add_argument("--warmup-s", type=float, default=0.5)
    parser.add_argument("--min-requests", type=int, default=50,
                        help="extend the window (up to --max-window-s) until this many answers")
    parser.add_argument("--max-window-s", type=float, default=0.0,
                        help="longest window when answers are slow (default 4x --duration-s)")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--header", action="append", default=[], help="name:value")
    args = parser.parse_args()
    payload: dict[str, object] = {
        "model": args.model,
        "messages": [{"role": "user", "content": "Say hello to the benchmark, please."}],
        "max_tokens": 64,
    }
    if args.stream:
        payload["stream"] = True
    headers = dict(h.split(":", 1) for h in args.header)
    run = run_load(args.url, json.dumps(payload).encode(), headers, args.concurrency,
                   args.duration_s, args.warmup_s, args.min_requests,
                   args.max_window_s or 4 * args.duration_s)
    try:
        import uvloop

        result = uvloop.run(run)
    except ImportError:
        result = asyncio.run(run)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
