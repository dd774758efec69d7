"""RouteRecord contents (JSONL) and Prometheus metric values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import StartFake, StartGateway
from tests.fakes import payloads
from tests.fakes.harness import (
    closed_port_url,
    endpoint_name,
    make_config,
    metric_samples,
    metric_sum,
    wait_until,
)
from tests.fakes.server import Behaviour

PRICE_IN, PRICE_OUT = 2.0, 8.0  # make_config's default prices, USD per 1M tokens
COST = (payloads.PROMPT_TOKENS * PRICE_IN + payloads.COMPLETION_TOKENS * PRICE_OUT) / 1e6
RECORD_FIELDS = {
    "request_id", "time", "tenant", "decision", "model", "endpoint", "attempts", "status",
    "latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "cost_usd",
}
ROUTING: dict[str, Any] = {
    "signals": [{"name": "code", "type": "keyword", "keywords": ["python"]}],
    "decisions": [{"name": "coding", "priority": 5, "when": {"signal": "code"}, "model": "m2"}],
    "default": "m1",
}


async def test_route_record_of_a_routed_request(fake: StartFake, gateway: StartGateway,
                                                records_path: Path) -> None:
    a, b = await fake("a"), await fake("b")
    gw = await gateway(make_config(records_path, {"m1": [("a", a.url)], "m2": [("b", b.url)]},
                                   routing=ROUTING))

    response = await gw.client.post(
        "/v1/chat/completions", headers={"x-switchyard-tenant": "team-blue"},
        json={"model": "auto", "messages": [{"role": "user", "content": "secret python code"}]})
    await gw.stop()

    [record] = gw.records()
    assert set(record) >= RECORD_FIELDS
    assert record["request_id"] == response.headers["x-switchyard-request-id"]
    assert record["tenant"] == "team-blue"
    assert record["decision"] == "coding"
    assert record["model"] == "m2"
    assert endpoint_name(record["endpoint"]) == "b"
    assert record["attempts"] == 1
    assert record["status"] == 200
    assert record["stream"] is False
    assert 0 < record["latency_ms"] < 5000
    assert record["prompt_tokens"] == payloads.PROMPT_TOKENS
    assert record["completion_tokens"] == payloads.COMPLETION_TOKENS
    assert record["cost_usd"] == pytest.approx(COST)
    assert record.get("prompt") is None
    assert "secret python code" not in records_path.read_text()


async def test_route_record_includes_prompt_only_when_enabled(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    a = await fake("a")
    gw = await gateway(make_config(records_path, {"m1": [("a", a.url)]},
                                   records={"include_prompts": True}))

    await gw.chat("m1", "remember this sentence")
    await gw.stop()

    [record] = gw.records()
    assert "remember this sentence" in record["prompt"]


async def test_route_record_counts_attempts_of_a_failover(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    flaky = await fake("flaky")
    flaky.queue(Behaviour(mode="fail", status=500))
    gw = await gateway(make_config(records_path, {"m1": [("flaky", flaky.url)]}))

    assert (await gw.chat("m1")).status_code == 200
    await gw.stop()

    [record] = gw.records()
    assert record["attempts"] == 2
    assert record["status"] == 200
    assert endpoint_name(record["endpoint"]) == "flaky"


async def test_route_record_of_a_stream_uses_upstream_usage(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    a = await fake("a", chunks=6)
    gw = await gateway(make_config(records_path, {"m1": [("a", a.url)]}))

    body = {"model": "m1", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hi"}]}
    async with gw.client.stream("POST", "/v1/chat/completions", json=body) as response:
        await response.aread()
    await gw.stop()

    [record] = gw.records()
    assert record["stream"] is True
    assert record["status"] == 200
    assert record["ttft_ms"] is not None and 0 < record["ttft_ms"] <= record["latency_ms"]
    assert record["prompt_tokens"] == payloads.PROMPT_TOKENS
    assert record["completion_tokens"] == payloads.COMPLETION_TOKENS
    assert record["cost_usd"] == pytest.approx(COST)


async def test_route_records_of_errors(fake: StartFake, gateway: StartGateway,
                                       records_path: Path) -> None:
    a = await fake("a", mode="fail", status=500)
    gw = await gateway(make_config(records_path, {"m1": [("a", a.url)]},
                                   pool_settings={"retry": {"attempts": 2}}))

    await gw.chat("m1")
    await gw.chat("no-such-model")
    await gw.stop()

    upstream_failed, unknown = gw.records()
    assert upstream_failed["status"] == 502
    assert upstream_failed["attempts"] == 2
    assert upstream_failed["error"]
    assert upstream_failed["cost_usd"] == 0
    assert unknown["status"] == 404


async def test_request_metrics(fake: StartFake, gateway: StartGateway,
                               records_path: Path) -> None:
    a = await fake("a")
    gw = await gateway(make_config(records_path, {"m1": [("a", a.url)]}))

    for _ in range(3):
        assert (await gw.chat("m1")).status_code == 200
    await gw.chat("missing-model")
    text = (await gw.client.get("/metrics")).text

    assert metric_sum(text, "switchyard_requests_total", model="m1", status="200") == 3
    assert metric_sum(text, "switchyard_requests_total", status="404") == 1
    assert metric_sum(text, "switchyard_request_latency_seconds_count", model="m1") == 3
    assert metric_sum(text, "switchyard_request_latency_seconds_sum", model="m1") > 0
    assert metric_sum(text, "switchyard_tokens_total", model="m1", kind="prompt") == (
        3 * payloads.PROMPT_TOKENS)
    assert metric_sum(text, "switchyard_tokens_total", model="m1", kind="completion") == (
        3 * payloads.COMPLETION_TOKENS)
    assert metric_sum(text, "switchyard_cost_usd_total", model="m1") == pytest.approx(3 * COST)


async def test_streaming_ttft_metric(fake: StartFake, gateway: StartGateway,
                                     records_path: Path) -> None:
    a = await fake("a", mode="slow", delay_s=0.05, chunks=3)
    gw = await gateway(make_config(records_path, {"m1": [("a", a.url)]}))

    body = {"model": "m1", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        async with gw.client.stream("POST", "/v1/chat/completions", json=body) as response:
            await response.aread()
    text = (await gw.client.get("/metrics")).text

    assert metric_sum(text, "switchyard_ttft_seconds_count", model="m1") == 2
    assert metric_sum(text, "switchyard_ttft_seconds_sum", model="m1") >= 0.1


async def test_error_retry_and_health_metrics(fake: StartFake, gateway: StartGateway,
                                              records_path: Path) -> None:
    bad, good = await fake("bad", mode="fail", status=500), await fake("good")
    health = {"enabled": True, "interval_s": 0.05, "failure_threshold": 1}
    gw = await gateway(make_config(
        records_path,
        {"m1": [("bad", bad.url), ("good", good.url)], "m2": [("gone", closed_port_url())]},
        pool_settings={"health": health}))

    for i in range(4):
        assert (await gw.chat("m1", f"q{i}")).status_code == 200

    async def gone_marked_down() -> bool:
        text = (await gw.client.get("/metrics")).text
        return metric_sum(text, "switchyard_endpoint_healthy", endpoint="gone") == 0

    assert await wait_until(gone_marked_down, timeout_s=3.0)
    text = (await gw.client.get("/metrics")).text
    failures = bad.inference_count
    assert failures >= 1
    assert metric_sum(text, "switchyard_upstream_errors_total", endpoint="bad") == failures
    assert metric_sum(text, "switchyard_upstream_errors_total", endpoint="bad",
                      kind="status") == failures
    assert metric_sum(text, "switchyard_retries_total", model="m1") == failures
    healthy = {(lab["pool"], lab["endpoint"]): value
               for lab, value in metric_samples(text, "switchyard_endpoint_healthy")}
    assert healthy[("m1", "good")] == 1
    assert healthy[("m1", "bad")] == 1, "health path answers 200 even when inference fails"
    assert healthy[("m2", "gone")] == 0
