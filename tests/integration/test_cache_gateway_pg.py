"""Gateways sharing the pgvector cache, and PostgreSQL outages (cache bypassed, requests served)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from tests.conftest import StartFake, StartGateway
from tests.fakes.harness import RunningGateway, make_config, metric_sum
from tests.fixtures_pg import EmbeddedPostgres

from switchyard.gateway import Gateway


def pg_config(records_path: Path, url: str, dsn: str, table: str) -> dict[str, Any]:
    cfg = make_config(records_path, {"m1": [("a", url)]})
    cfg["cache"] = {"enabled": True, "mode": "exact",
                    "backend": {"type": "pgvector", "dsn": dsn, "table": table,
                                "timeout_s": 0.5, "retry_after_s": 0.2}}
    return cfg


async def settle(gw: RunningGateway) -> None:
    gateway: Gateway = gw.server.config.app.state.gateway
    assert gateway.cache is not None
    await gateway.cache.drain()


def content(body: bytes) -> str:
    return str(orjson.loads(body)["choices"][0]["message"]["content"])


async def test_two_gateways_share_the_pgvector_cache(
        fake: StartFake, gateway: StartGateway, tmp_path: Path,
        postgres_dsn: str, make_table: Callable[[], str]) -> None:
    backend = await fake("a", content="shared answer")
    table = make_table()
    one = await gateway(pg_config(tmp_path / "r1" / "routes.jsonl", backend.url,
                                  postgres_dsn, table))
    two = await gateway(pg_config(tmp_path / "r2" / "routes.jsonl", backend.url,
                                  postgres_dsn, table))
    first = await one.chat(text="Which planet is largest?")
    assert first.headers["x-switchyard-cache"] == "miss"
    await settle(one)
    other = await two.chat(text="which planet is LARGEST?")
    assert (other.headers["x-switchyard-cache"], content(other.content)) == (
        "hit", "shared answer")
    assert len(backend.inference_requests()) == 1
    foreign = await two.client.post(
        "/v1/chat/completions", headers={"x-switchyard-tenant": "intruder"},
        json={"model": "m1", "messages": [{"role": "user", "content": "Which planet is largest?"}]})
    assert foreign.headers["x-switchyard-cache"] == "miss"


async def test_postgres_going_down_bypasses_the_cache(
        fake: StartFake, gateway: StartGateway, records_path: Path,
        postgres: EmbeddedPostgres, make_table: Callable[[], str]) -> None:
    backend = await fake("a", content="still served")
    gw = await gateway(pg_config(records_path, backend.url, postgres.dsn, make_table()))
    await gw.chat(text="before the outage")
    await settle(gw)
    assert (await gw.chat(text="before the outage")).headers["x-switchyard-cache"] == "hit"
    postgres.stop()
    try:
        for _ in range(3):
            during = await gw.chat(text="before the outage")
            assert during.status_code == 200
            assert content(during.content) == "still served"
            assert during.headers["x-switchyard-cache"] == "bypass"
            assert during.headers["x-switchyard-cache-reason"] == "backend_unavailable"
        metrics = (await gw.client.get("/metrics")).text
        assert metric_sum(metrics, "switchyard_cache_backend_errors_total") >= 3
        assert metric_sum(metrics, "switchyard_requests_total", status="200") == 5
    finally:
        postgres.start()
    # Back up: after `retry_after_s` the cache reconnects and serves hits again.
    await asyncio.sleep(0.3)
    after = await gw.chat(text="before the outage")
    assert after.headers["x-switchyard-cache"] == "hit"


async def test_postgres_unreachable_at_start(
        fake: StartFake, gateway: StartGateway, records_path: Path, tmp_path: Path) -> None:
    backend = await fake("a")
    dsn = f"postgresql://postgres:@/postgres?host={tmp_path}"
    gw = await gateway(pg_config(records_path, backend.url, dsn, "cache_never"))
    response = await gw.chat(text="hello")
    assert response.status_code == 200
    assert response.headers["x-switchyard-cache"] == "bypass"
    metrics = (await gw.client.get("/metrics")).text
    assert metric_sum(metrics, "switchyard_cache_backend_errors_total") >= 1
