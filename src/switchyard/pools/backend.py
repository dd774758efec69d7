"""OpenAI-compatible upstream client (aiohttp, pooled keep-alive connections).

This is the one place where aiohttp exceptions are translated into switchyard errors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from time import time
from typing import Any

import aiohttp

from switchyard.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)

_PASS_HEADERS = ("content-type",)


@dataclass(frozen=True, slots=True)
class UpstreamTarget:
    """Where and how to send one attempt."""

    url: str
    api_key: str | None
    connect_timeout_s: float
    attempt_timeout_s: float


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    status: int
    content_type: str
    body: bytes


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


class UpstreamStream:
    """An open streaming response; iterate `chunks()` after the first chunk was read."""

    def __init__(self, response: aiohttp.ClientResponse, first: bytes) -> None:
        self._response = response
        self.first = first
        self.content_type = response.headers.get("content-type", "text/event-stream")

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _translate(exc) from None

    def close(self) -> None:
        self._response.close()


def _translate(exc: BaseException) -> UpstreamError:
    if isinstance(exc, asyncio.TimeoutError):
        return UpstreamTimeoutError("upstream timed out")
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerDisconnectedError):
        return UpstreamConnectError(f"cannot reach upstream: {exc}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamProtocolError(f"upstream response broken: {exc}")
    return UpstreamConnectError(f"upstream connection failed: {type(exc).__name__}: {exc}")


class OpenAIBackend:
    """Sends requests to OpenAI-style servers over one pooled aiohttp session."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    @staticmethod
    def _headers(target: UpstreamTarget, stream: bool) -> dict[str, str]:
        # identity: answers are relayed byte for byte and parsed for usage, so a compressed
        # body (aiohttp would otherwise offer gzip/deflate) would reach the client undecoded
        headers = {"content-type": "application/json", "accept-encoding": "identity"}
        if stream:
            headers["accept"] = "text/event-stream"
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        return headers

    @staticmethod
    def _timeout(target: UpstreamTarget, stream: bool) -> aiohttp.ClientTimeout:
        if stream:
            # whole-stream deadline is enforced by the caller; bound connect and silence
            return aiohttp.ClientTimeout(
                total=None, connect=target.connect_timeout_s, sock_read=target.attempt_timeout_s
            )
        return aiohttp.ClientTimeout(
            total=target.attempt_timeout_s, connect=target.connect_timeout_s
        )

    async def complete(self, target: UpstreamTarget, path: str, body: bytes) -> UpstreamReply:
        """One non-streaming attempt. Raises UpstreamError (retryable or not)."""
        try:
            async with self._client().post(
                target.url + path,
                data=body,
                headers=self._headers(target, stream=False),
                timeout=self._timeout(target, stream=False),
            ) as response:
                payload = await response.read()
                content_type = response.headers.get("content-type", "application/json")
                _raise_for_status(response.status, response.headers, payload)
                return UpstreamReply(response.status, content_type, payload)
        except UpstreamError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _translate(exc) from None

    async def open_stream(self, target: UpstreamTarget, path: str, body: bytes) -> UpstreamStream:
        """Start a streaming attempt and read its first chunk (failover is still possible)."""
        response: aiohttp.ClientResponse | None = None
        try:
            response = await self._client().post(
                target.url + path,
                data=body,
                headers=self._headers(target, stream=True),
                timeout=self._timeout(target, stream=True),
            )
            if response.status >= 400:
                payload = await response.read()
                _raise_for_status(response.status, response.headers, payload)
            first = await response.content.readany()
            if not first:
                raise UpstreamProtocolError("upstream closed the stream before sending data")
            return UpstreamStream(response, first)
        except BaseException as exc:
            if response is not None:
                response.close()
            if isinstance(exc, UpstreamError):
                raise
            if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
                raise _translate(exc) from None
            raise

    async def probe(self, url: str, timeout_s: float) -> bool:
        """Health check: GET url answers 2xx within the timeout."""
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, OSError):
            async with self._client().get(
                url, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                await response.read()
                return 200 <= response.status < 300
        return False

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _raise_for_status(status: int, headers: Mapping[str, Any], payload: bytes) -> None:
    if status < 400:
        return
    retry_after = parse_retry_after(headers.get("retry-after"))
    raise UpstreamStatusError(
        f"upstream answered HTTP {status}",
        upstream_status=status,
        body=payload,
        retry_after=retry_after,
    )
