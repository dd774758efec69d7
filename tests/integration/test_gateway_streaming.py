"""SSE streaming: byte-exact relay, failover before the first byte, errors after it,
and cancellation of the upstream request when the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import orjson
from tests.conftest import StartFake, StartGateway
from tests.fakes import payloads
from tests.fakes.harness import (
    RunningGateway,
    closed_port_url,
    endpoint_name,
    make_config,
    sse_events,
    wait_until,
)

MESSAGES = [{"role": "user", "content": "stream please"}]


async def stream_body(gw: RunningGateway, path: str = "/v1/chat/completions",
                      **extra: Any) -> tuple[httpx.Response, bytes]:
    body: dict[str, Any] = {"model": "m1", "stream": True, **extra}
    if path.endswith("chat/completions"):
        body.setdefault("messages", MESSAGES)
    else:
        body.setdefault("prompt", "stream please")
    async with gw.client.stream("POST", path, json=body) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, raw


async def test_chat_stream_is_relayed_byte_exact(fake: StartFake, gateway: StartGateway,
                                                 records_path: Path) -> None:
    backend = await fake("a", chunks=12)
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}))
    options = {"stream_options": {"include_usage": True}}

    response, raw = await stream_body(gw, **options)
    async with httpx.AsyncClient(verify=False) as client:
        direct = await client.post(
            backend.url + "/chat/completions",
            json={"model": "m1", "stream": True, "messages": MESSAGES, **options})

    expected = b"".join(payloads.chat_stream_events("m1", backend.behaviour.content, "a", 12,
                                                    include_usage=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert endpoint_name(response.headers["x-switchyard-endpoint"]) == "a"
    assert response.headers["x-switchyard-model"] == "m1"
    assert raw == expected == direct.content
    assert backend.inference_requests()[0].json()["stream_options"] == {"include_usage": True}


async def test_completion_stream_is_relayed_byte_exact(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a", chunks=4)
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}))

    response, raw = await stream_body(gw, "/v1/completions")

    expected = b"".join(payloads.completion_stream_events(
        "m1", backend.behaviour.content, "a", 4, include_usage=False))
    assert response.status_code == 200
    assert raw == expected


async def test_slow_stream_arrives_incrementally(fake: StartFake, gateway: StartGateway,
                                                 records_path: Path) -> None:
    backend = await fake("a", mode="slow", chunks=5, chunk_delay_s=0.1)
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}))
    arrivals: list[float] = []
    loop = asyncio.get_running_loop()

    body = {"model": "m1", "stream": True, "messages": MESSAGES}
    async with gw.client.stream("POST", "/v1/chat/completions", json=body) as response:
        async for _ in response.aiter_raw():
            arrivals.append(loop.time())

    assert len(arrivals) >= 4, "chunks must not be buffered until the end"
    assert arrivals[-1] - arrivals[0] >= 0.3


async def test_stream_fails_over_on_5xx_before_first_byte(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    bad, good = await fake("bad", mode="fail", status=500), await fake("good", chunks=3)
    gw = await gateway(make_config(records_path, {"m1": [("bad", bad.url), ("good", good.url)]}))

    results = [await stream_body(gw) for _ in range(3)]

    expected = b"".join(payloads.chat_stream_events("m1", good.behaviour.content, "good", 3,
                                                    include_usage=False))
    for response, raw in results:
        assert response.status_code == 200
        assert endpoint_name(response.headers["x-switchyard-endpoint"]) == "good"
        assert raw == expected
    assert bad.inference_count >= 1


async def test_stream_fails_over_when_upstream_drops_before_first_chunk(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    dropper, good = await fake("dropper", mode="drop", drop_after=0), await fake("good", chunks=3)
    gw = await gateway(make_config(
        records_path, {"m1": [("dropper", dropper.url), ("good", good.url),
                              ("refused", closed_port_url())]}))

    results = [await stream_body(gw) for _ in range(4)]

    for response, raw in results:
        assert response.status_code == 200
        assert raw.endswith(b"data: [DONE]\n\n")
        assert b"error" not in raw
    assert dropper.inference_count >= 1


async def test_stream_failure_after_first_byte_ends_with_error_event(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    dropper = await fake("dropper", mode="drop", drop_after=3, chunks=10)
    gw = await gateway(make_config(records_path, {"m1": [("dropper", dropper.url)]}))

    response, raw = await stream_body(gw)

    assert endpoint_name(response.headers["x-switchyard-endpoint"]) == "dropper"
    events = payloads.chat_stream_events("m1", dropper.behaviour.content, "dropper", 10,
                                         include_usage=False)
    sent_before_drop = b"".join(events[:3])
    assert response.status_code == 200
    assert raw.startswith(sent_before_drop), "bytes before the failure are relayed unchanged"
    tail = sse_events(raw[len(sent_before_drop):])
    assert len(tail) == 2, f"expected an error event and [DONE], got {tail!r}"
    error_event, done = tail
    data_line = next(line for line in error_event.split(b"\n") if line.startswith(b"data:"))
    assert "error" in orjson.loads(data_line[5:])
    assert b"event: error" in error_event or b'"error"' in data_line
    assert done == b"data: [DONE]"
    assert dropper.inference_count == 1, "a started stream must not be retried"


async def test_client_disconnect_cancels_upstream_stream(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a", mode="slow", chunks=50, chunk_delay_s=0.1)
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}))

    body = {"model": "m1", "stream": True, "messages": MESSAGES}
    async with gw.client.stream("POST", "/v1/chat/completions", json=body) as response:
        async for _ in response.aiter_raw():
            break

    assert await wait_until(lambda: backend.disconnects >= 1, timeout_s=2.0), (
        "the upstream stream kept running after the client left")


async def test_client_disconnect_cancels_upstream_request(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a", mode="slow", delay_s=4.0)
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}))

    async with httpx.AsyncClient(base_url=gw.base_url, timeout=0.3, verify=False) as impatient:
        with contextlib.suppress(httpx.TimeoutException):
            await impatient.post("/v1/chat/completions",
                                 json={"model": "m1", "messages": MESSAGES})

    assert await wait_until(lambda: backend.disconnects >= 1, timeout_s=2.0), (
        "the upstream request kept running after the client left")
