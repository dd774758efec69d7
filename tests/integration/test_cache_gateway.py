"""The cache inside the gateway: hits skip the upstream, replays are valid JSON/SSE, failed or
aborted streams are never stored, tenants never see each other's entries, admin endpoints."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import orjson
from tests.conftest import StartFake, StartGateway
from tests.fakes.harness import RunningGateway, make_config, metric_sum, sse_events

from switchyard.cache.replay import assemble_sse
from switchyard.gateway import Gateway

ADMIN_KEY = "admin-secret"


def cache_config(records_path: Path, url: str, tmp_path: Path, **cache: Any) -> dict[str, Any]:
    cfg = make_config(records_path, {"m1": [("a", url)]})
    cfg["cache"] = {"enabled": True, "mode": "exact", "admin_key": ADMIN_KEY,
                    "backend": {"type": "embedded", "path": str(tmp_path / "cache.sqlite")},
                    **cache}
    return cfg


def gateway_of(gw: RunningGateway) -> Gateway:
    gateway: Gateway = gw.server.config.app.state.gateway
    return gateway


async def settle(gw: RunningGateway) -> None:
    """Wait for background cache stores."""
    step = gateway_of(gw).cache
    assert step is not None
    await step.drain()


def content(body: bytes) -> str:
    return str(orjson.loads(body)["choices"][0]["message"]["content"])


async def stream(gw: RunningGateway, text: str, **extra: Any) -> tuple[httpx.Response, bytes]:
    body = {"model": "m1", "stream": True, "messages": [{"role": "user", "content": text}],
            **extra}
    async with gw.client.stream("POST", "/v1/chat/completions", json=body) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, raw


def assert_valid_sse(raw: bytes) -> list[Any]:
    events = sse_events(raw)
    assert events[-1] == b"data: [DONE]"
    parsed = []
    for event in events[:-1]:
        assert event.startswith(b"data: ")
        parsed.append(orjson.loads(event[6:]))
    assert raw.endswith(b"\n\n")
    return parsed


async def test_hit_skips_upstream_and_replays_json_and_sse(
        fake: StartFake, gateway: StartGateway, records_path: Path, tmp_path: Path) -> None:
    backend = await fake("a", content="Paris is the capital.")
    gw = await gateway(cache_config(records_path, backend.url, tmp_path))
    first = await gw.chat(text="What is the capital of France?")
    assert first.headers["x-switchyard-cache"] == "miss"
    await settle(gw)
    second = await gw.chat(text="what is the capital of  france?")
    assert second.status_code == 200
    assert (second.headers["x-switchyard-cache"], second.headers["x-switchyard-cache-match"]) == (
        "hit", "exact")
    assert content(second.content) == "Paris is the capital."
    assert orjson.loads(second.content)["id"] != orjson.loads(first.content)["id"]
    response, raw = await stream(gw, "What is the capital of France?",
                                 stream_options={"include_usage": True})
    assert response.headers["x-switchyard-cache"] == "hit"
    assert response.headers["content-type"].startswith("text/event-stream")
    parsed = assert_valid_sse(raw)
    assert parsed[-1]["usage"]["completion_tokens"] == 7
    assembled = assemble_sse(raw)
    assert assembled is not None and content(assembled) == "Paris is the capital."
    assert len(backend.inference_requests()) == 1
    metrics = (await gw.client.get("/metrics")).text
    assert metric_sum(metrics, "switchyard_cache_lookups_total", result="hit") == 2
    assert metric_sum(metrics, "switchyard_cache_lookups_total", result="miss") == 1
    await gw.stop()
    caches = [r["cache"] for r in gw.records()]
    assert sorted(caches) == ["hit", "hit", "miss"]
    hit_records = [r for r in gw.records() if r["cache"] == "hit"]
    assert all(r["cost_usd"] == 0 and r["attempts"] == 0 for r in hit_records)
    miss = next(r for r in gw.records() if r["cache"] == "miss")
    assert miss["cost_usd"] > 0 and miss["cost_saved_usd"] == 0
    assert [r["cost_saved_usd"] for r in hit_records] == [miss["cost_usd"]] * 2


async def test_streamed_answer_is_cached_and_served_to_json_clients(
        fake: StartFake, gateway: StartGateway, records_path: Path, tmp_path: Path) -> None:
    backend = await fake("a", content="Streaming answer text.", chunks=6)
    gw = await gateway(cache_config(records_path, backend.url, tmp_path))
    response, raw = await stream(gw, "Tell me something")
    assert response.headers["x-switchyard-cache"] == "miss"
    await settle(gw)
    hit = await gw.chat(text="Tell me something")
    assert hit.headers["x-switchyard-cache"] == "hit"
    upstream = assemble_sse(raw)
    assert upstream is not None
    assert content(hit.content) == content(upstream)
    response, replay = await stream(gw, "Tell me something")
    parsed = assert_valid_sse(replay)
    assert not any("usage" in p for p in parsed)  # not asked for
    assert len(backend.inference_requests()) == 1


async def test_failed_and_aborted_streams_are_not_cached(
        fake: StartFake, gateway: StartGateway, records_path: Path, tmp_path: Path) -> None:
    backend = await fake("a", mode="drop", drop_after=2, chunks=6)
    gw = await gateway(cache_config(records_path, backend.url, tmp_path))
    _, raw = await stream(gw, "dropped mid-way")
    assert b"error" in raw
    await settle(gw)
    backend.behaviour.mode = "slow"
    backend.behaviour.chunk_delay_s = 0.05
    async with gw.client.stream("POST", "/v1/chat/completions", json={
            "model": "m1", "stream": True,
            "messages": [{"role": "user", "content": "client leaves"}]}) as response:
        async for _ in response.aiter_raw():
            break  # disconnect after the first bytes
    await asyncio.sleep(0.3)
    await settle(gw)
    backend.behaviour.mode = "fail"
    failed = await gw.chat(text="upstream fails")
    assert failed.status_code >= 500
    await settle(gw)
    stats = await gw.client.get("/admin/cache/stats", headers={"x-switchyard-admin-key":
                                                                ADMIN_KEY})
    assert (stats.json()["stores"], stats.json()["store"]["entries"]) == (0, 0)
    backend.behaviour.mode = "fixed"
    before = len(backend.inference_requests())
    for text in ("dropped mid-way", "client leaves", "upstream fails"):
        again = await gw.chat(text=text)
        assert again.headers["x-switchyard-cache"] == "miss", text
    assert len(backend.inference_requests()) == before + 3


async def test_tenants_are_isolated_through_the_gateway(
        fake: StartFake, gateway: StartGateway, records_path: Path, tmp_path: Path) -> None:
    backend = await fake("a", content="alice's private answer")
    gw = await gateway(cache_config(records_path, backend.url, tmp_path))
    body = {"model": "m1", "messages": [{"role": "user", "content": "my account balance?"}]}
    await gw.client.post("/v1/chat/completions", json=body,
                         headers={"x-switchyard-tenant": "alice"})
    await settle(gw)
    backend.behaviour.content = "bob's own answer"
    bob = await gw.client.post("/v1/chat/completions", json=body,
                               headers={"x-switchyard-tenant": "bob"})
    assert bob.headers["x-switchyard-cache"] == "miss"
    assert content(bob.content) == "bob's own answer"
    await settle(gw)
    alice = await gw.client.post("/v1/chat/completions", json=body,
                                 headers={"x-switchyard-tenant": "alice"})
    assert (alice.headers["x-switchyard-cache"], content(alice.content)) == (
        "hit", "alice's private answer")


async def test_sampled_requests_bypass_and_admin_endpoints(
        fake: StartFake, gateway: StartGateway, records_path: Path, tmp_path: Path) -> None:
    backend = await fake("a")
    gw = await gateway(cache_config(records_path, backend.url, tmp_path))
    sampled = await gw.chat(text="creative please", temperature=0.9)
    assert (sampled.headers["x-switchyard-cache"],
            sampled.headers["x-switchyard-cache-reason"]) == ("bypass", "temperature")
    await gw.client.post("/v1/chat/completions", json={
        "model": "m1", "messages": [{"role": "user", "content": "q"}]},
        headers={"x-switchyard-tenant": "t1"})
    await settle(gw)
    assert (await gw.client.get("/admin/cache/stats")).status_code == 401
    wrong = await gw.client.get("/admin/cache/stats", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    stats = (await gw.client.get("/admin/cache/stats", headers=auth)).json()
    assert stats["store"]["tenants"] == {"t1": 1}
    assert stats["bypasses"] == 1
    cleared = await gw.client.post("/admin/cache/clear", params={"tenant": "t1"}, headers=auth)
    assert cleared.json() == {"removed": 1, "tenant": "t1"}


async def test_restart_durability_embedded(
        fake: StartFake, gateway: StartGateway, records_path: Path, tmp_path: Path) -> None:
    backend = await fake("a", content="durable answer")
    cfg = cache_config(records_path, backend.url, tmp_path)
    first = await gateway(cfg)
    await first.chat(text="remember me")
    await settle(first)
    await first.stop()
    second = await gateway(cfg)
    again = await second.chat(text="remember me")
    assert (again.headers["x-switchyard-cache"], content(again.content)) == (
        "hit", "durable answer")
    assert len(backend.inference_requests()) == 1
    with contextlib.suppress(Exception):
        await second.stop()
