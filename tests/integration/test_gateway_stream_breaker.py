"""Mid-stream upstream failures count against the endpoint (circuit breaker)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import StartFake, StartGateway
from tests.fakes.harness import make_config


async def test_mid_stream_failures_count_against_the_endpoint(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    dropper = await fake("dropper", mode="drop", drop_after=3, chunks=10)
    good = await fake("good", chunks=3)
    gw = await gateway(make_config(
        records_path, {"m1": [("dropper", dropper.url), ("good", good.url)]},
        pool_settings={"circuit_breaker": {"failure_threshold": 2, "open_s": 30}}))
    body = {"model": "m1", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    for _ in range(10):
        async with gw.client.stream("POST", "/v1/chat/completions", json=body) as response:
            await response.aread()
    assert dropper.inference_count == 2, "two broken streams open the circuit"
