"""Authentication, admission under saturation, health recovery, ejection and record files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import StartFake, StartGateway
from tests.fakes.harness import make_config, metric_sum, wait_until

MESSAGES = [{"role": "user", "content": "hello"}]


async def test_api_keys_authenticate_and_name_the_tenant(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a")
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]},
                                   server={"api_keys": {"sk-team-a": "team-a"}}))
    body = {"model": "m1", "messages": MESSAGES}

    missing = await gw.client.post("/v1/chat/completions", json=body)
    wrong = await gw.client.post("/v1/chat/completions", json=body,
                                 headers={"authorization": "Bearer sk-nope"})
    right = await gw.client.post("/v1/chat/completions", json=body,
                                 headers={"authorization": "Bearer sk-team-a"})
    await gw.stop()

    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    assert right.status_code == 200
    assert backend.inference_count == 1
    assert [r["tenant"] for r in gw.records() if r["status"] == 200] == ["team-a"]
    assert "sk-team-a" not in records_path.read_text()


async def test_saturated_pool_answers_503_with_retry_after(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a", mode="slow", delay_s=1.0)
    config = make_config(records_path, {"m1": [("a", backend.url)]})
    config["pools"][0]["endpoints"][0].update({"max_concurrency": 1, "max_queue_wait_s": 0.2})
    gw = await gateway(config)

    first, second = await asyncio.gather(gw.chat("m1", "one"), gw.chat("m1", "two"))

    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 503]
    rejected = first if first.status_code == 503 else second
    assert rejected.json()["error"]["message"]
    assert int(rejected.headers["retry-after"]) >= 1
    assert backend.inference_count == 1


async def test_queued_request_waits_for_a_free_slot(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a", mode="slow", delay_s=0.2)
    config = make_config(records_path, {"m1": [("a", backend.url)]})
    config["pools"][0]["endpoints"][0].update({"max_concurrency": 1, "max_queue_wait_s": 3.0})
    gw = await gateway(config)

    responses = await asyncio.gather(*(gw.chat("m1", f"q{i}") for i in range(3)))

    assert [r.status_code for r in responses] == [200] * 3
    times = sorted(r.time for r in backend.inference_requests())
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert all(gap >= 0.18 for gap in gaps), f"requests overlapped upstream: gaps {gaps}"


async def test_readyz_follows_health_checks_down_and_up(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a")
    health = {"enabled": True, "interval_s": 0.05, "timeout_s": 0.5, "failure_threshold": 1,
              "success_threshold": 2}
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]},
                                   pool_settings={"health": health}))

    async def ready_status() -> int:
        return (await gw.client.get("/readyz")).status_code

    assert await ready_status() == 200
    backend.set("down")

    async def is_down() -> bool:
        return await ready_status() == 503

    assert await wait_until(is_down, timeout_s=3.0)
    backend.set("fixed")

    async def is_up() -> bool:
        return await ready_status() == 200

    assert await wait_until(is_up, timeout_s=3.0)
    assert (await gw.chat("m1")).status_code == 200


async def test_passive_ejection_is_visible_in_metrics(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    bad, good = await fake("bad", mode="fail", status=500), await fake("good")
    settings = {"health": {"enabled": True, "interval_s": 30.0},
                "outlier": {"consecutive_failures": 2}}
    gw = await gateway(make_config(records_path, {"m1": [("bad", bad.url), ("good", good.url)]},
                                   pool_settings=settings))

    for i in range(6):
        assert (await gw.chat("m1", f"q{i}")).status_code == 200
    text = (await gw.client.get("/metrics")).text

    assert bad.inference_count == 2, "an ejected replica gets no more traffic"
    assert metric_sum(text, "switchyard_endpoint_healthy", endpoint="bad") == 0
    assert metric_sum(text, "switchyard_endpoint_healthy", endpoint="good") == 1


async def test_records_rotate_by_size(fake: StartFake, gateway: StartGateway,
                                      records_path: Path) -> None:
    backend = await fake("a")
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]},
                                   records={"max_bytes": 700, "backups": 2}))

    for group in range(4):
        for i in range(3):
            assert (await gw.chat("m1", f"g{group} q{i}")).status_code == 200
        await asyncio.sleep(0.3)
    await gw.stop()

    files = sorted(p.name for p in records_path.parent.iterdir())
    assert files == ["routes.jsonl", "routes.jsonl.1", "routes.jsonl.2"]
    assert 3 <= len(gw.records()) < 12


async def test_client_disconnect_is_recorded(fake: StartFake, gateway: StartGateway,
                                             records_path: Path) -> None:
    backend = await fake("a", mode="slow", chunks=40, chunk_delay_s=0.05)
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}))

    body = {"model": "m1", "stream": True, "messages": MESSAGES}
    async with gw.client.stream("POST", "/v1/chat/completions", json=body) as response:
        async for _ in response.aiter_raw():
            break
    assert await wait_until(lambda: backend.disconnects >= 1, timeout_s=2.0)
    await gw.stop()

    [record] = gw.records()
    assert record["status"] == 499
    assert record["stream"] is True
    assert record["error"]
