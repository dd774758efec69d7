"""Retries, failover between replicas, circuit breaking, Retry-After and model fallback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.conftest import StartFake, StartGateway
from tests.fakes.harness import closed_port_url, endpoint_name, make_config
from tests.fakes.server import Behaviour


async def test_failover_on_5xx(fake: StartFake, gateway: StartGateway,
                               records_path: Path) -> None:
    bad, good = await fake("bad", mode="fail", status=503), await fake("good")
    gw = await gateway(make_config(records_path, {"m1": [("bad", bad.url), ("good", good.url)]}))

    responses = [await gw.chat("m1", f"q{i}") for i in range(6)]

    assert [r.status_code for r in responses] == [200] * 6
    assert {endpoint_name(r.headers["x-switchyard-endpoint"]) for r in responses} == {"good"}
    assert bad.inference_count >= 1
    assert good.inference_count == 6


async def test_failover_on_connection_refused(fake: StartFake, gateway: StartGateway,
                                              records_path: Path) -> None:
    good = await fake("good")
    gw = await gateway(make_config(
        records_path, {"m1": [("refused", closed_port_url()), ("good", good.url)]}))

    responses = [await gw.chat("m1", f"q{i}") for i in range(4)]

    assert [r.status_code for r in responses] == [200] * 4
    assert good.inference_count == 4


async def test_failover_on_attempt_timeout(fake: StartFake, gateway: StartGateway,
                                           records_path: Path) -> None:
    slow, good = await fake("slow", mode="slow", delay_s=3.0), await fake("good")
    timeouts = {"connect_s": 0.5, "attempt_s": 0.3, "total_s": 5.0}
    gw = await gateway(make_config(records_path, {"m1": [("slow", slow.url), ("good", good.url)]},
                                   pool_settings={"timeouts": timeouts}))

    started = time.monotonic()
    responses = [await gw.chat("m1", f"q{i}") for i in range(4)]
    elapsed = time.monotonic() - started

    assert [r.status_code for r in responses] == [200] * 4
    assert slow.inference_count >= 1
    assert elapsed < 2.5, f"a timed-out attempt took too long ({elapsed:.2f}s for 4 requests)"


async def test_single_endpoint_retries_5xx_then_succeeds(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    flaky = await fake("flaky")
    flaky.queue(Behaviour(mode="fail", status=500), Behaviour(mode="fail", status=502))
    gw = await gateway(make_config(records_path, {"m1": [("flaky", flaky.url)]}))

    response = await gw.chat("m1")

    assert response.status_code == 200
    assert flaky.inference_count == 3


async def test_retries_are_bounded_by_attempts(fake: StartFake, gateway: StartGateway,
                                               records_path: Path) -> None:
    bad = await fake("bad", mode="fail", status=500)
    gw = await gateway(make_config(records_path, {"m1": [("bad", bad.url)]},
                                   pool_settings={"retry": {"attempts": 2}}))

    response = await gw.chat("m1")

    assert response.status_code == 502
    assert response.json()["error"]["message"]
    assert bad.inference_count == 2


async def test_total_timeout_bounds_the_request(fake: StartFake, gateway: StartGateway,
                                                records_path: Path) -> None:
    slow = await fake("slow", mode="slow", delay_s=5.0)
    timeouts = {"connect_s": 0.5, "attempt_s": 0.4, "total_s": 1.0}
    gw = await gateway(make_config(records_path, {"m1": [("slow", slow.url)]},
                                   pool_settings={"timeouts": timeouts,
                                                  "retry": {"attempts": 10}}))

    started = time.monotonic()
    response = await gw.chat("m1")
    elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response.json()["error"]["code"]
    assert elapsed < 2.0


async def test_retry_after_is_honoured(fake: StartFake, gateway: StartGateway,
                                       records_path: Path) -> None:
    limited = await fake("limited")
    limited.queue(Behaviour(mode="rate_limit", retry_after="1"))
    gw = await gateway(make_config(records_path, {"m1": [("limited", limited.url)]}))

    response = await gw.chat("m1")

    assert response.status_code == 200
    first, second = limited.inference_requests()
    gap = second.time - first.time
    assert 0.9 <= gap < 2.0, f"retry came {gap:.3f}s after a 429 with Retry-After: 1"


async def test_retry_after_ignored_when_disabled(fake: StartFake, gateway: StartGateway,
                                                 records_path: Path) -> None:
    limited = await fake("limited")
    limited.queue(Behaviour(mode="rate_limit", retry_after="1"))
    retry = {"honour_retry_after": False, "backoff_initial_s": 0.01}
    gw = await gateway(make_config(records_path, {"m1": [("limited", limited.url)]},
                                   pool_settings={"retry": retry}))

    response = await gw.chat("m1")

    assert response.status_code == 200
    first, second = limited.inference_requests()
    assert second.time - first.time < 0.5


async def test_circuit_opens_and_recovers_half_open(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    bad, good = await fake("bad", mode="fail", status=500), await fake("good")
    open_s = 1.0
    breaker = {"failure_threshold": 2, "open_s": open_s}
    gw = await gateway(make_config(records_path, {"m1": [("bad", bad.url), ("good", good.url)]},
                                   pool_settings={"circuit_breaker": breaker}))

    first = [await gw.chat("m1", f"q{i}") for i in range(8)]
    failures_to_open = bad.inference_count
    opened_at = bad.inference_requests()[-1].time
    while_open = []
    while time.monotonic() < opened_at + 0.6 * open_s or len(while_open) < 3:
        while_open.append(await gw.chat("m1", f"o{len(while_open)}"))

    assert [r.status_code for r in first + while_open] == [200] * (8 + len(while_open))
    assert failures_to_open == 2, "the breaker should open after exactly 2 failures"
    assert bad.inference_count == failures_to_open, "an open circuit must not receive requests"

    bad.set("fixed")
    await asyncio.sleep(max(0.0, opened_at + open_s + 0.1 - time.monotonic()))
    recovered = [await gw.chat("m1", f"r{i}") for i in range(8)]

    assert [r.status_code for r in recovered] == [200] * 8
    served_by_bad = [
        r for r in recovered if endpoint_name(r.headers["x-switchyard-endpoint"]) == "bad"]
    assert len(served_by_bad) >= 3, "after a good half-open probe the circuit closes"


async def test_half_open_probe_failure_reopens(fake: StartFake, gateway: StartGateway,
                                               records_path: Path) -> None:
    bad, good = await fake("bad", mode="fail", status=500), await fake("good")
    open_s = 0.8
    breaker = {"failure_threshold": 1, "open_s": open_s}
    gw = await gateway(make_config(records_path, {"m1": [("bad", bad.url), ("good", good.url)]},
                                   pool_settings={"circuit_breaker": breaker}))

    for i in range(4):
        assert (await gw.chat("m1", f"q{i}")).status_code == 200
    assert bad.inference_count == 1
    await asyncio.sleep(max(0.0, bad.inference_requests()[-1].time + open_s + 0.1
                            - time.monotonic()))
    for i in range(6):
        assert (await gw.chat("m1", f"p{i}")).status_code == 200
        if bad.inference_count == 2:
            break
    assert bad.inference_count == 2, "a half-open circuit lets one probe through"
    reopened_at = bad.inference_requests()[-1].time
    sent = 0
    while time.monotonic() < reopened_at + 0.5 * open_s or sent < 3:
        assert (await gw.chat("m1", f"s{sent}")).status_code == 200
        sent += 1

    assert bad.inference_count == 2, "a failed probe opens the circuit again"


async def test_model_fallback_chain_when_pool_is_failing(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    broken, backup = await fake("broken", mode="fail", status=500), await fake("backup")
    gw = await gateway(make_config(
        records_path, {"m1": [("broken", broken.url)], "m2": [("backup", backup.url)]},
        routing={"default": ["m1", "m2"]}, pool_settings={"retry": {"attempts": 2}}))

    response = await gw.chat("auto")

    assert response.status_code == 200
    assert response.headers["x-switchyard-model"] == "m2"
    assert endpoint_name(response.headers["x-switchyard-endpoint"]) == "backup"
    assert backup.inference_requests()[0].json()["model"] == "m2"
    assert broken.inference_count == 2


async def test_model_fallback_chain_of_a_decision_when_replicas_refuse(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backup = await fake("backup")
    routing = {
        "signals": [{"name": "code", "type": "keyword", "keywords": ["python"]}],
        "decisions": [{"name": "coding", "priority": 1, "when": {"signal": "code"},
                       "models": ["m1", "m2", "m3"]}],
        "default": "m3",
    }
    gw = await gateway(make_config(
        records_path,
        {"m1": [("dead1", closed_port_url())], "m2": [("dead2", closed_port_url())],
         "m3": [("backup", backup.url)]},
        routing=routing))

    response = await gw.chat("auto", "python help")

    assert response.status_code == 200
    assert response.headers["x-switchyard-decision"] == "coding"
    assert response.headers["x-switchyard-model"] == "m3"


async def test_fallback_skips_model_whose_replicas_are_all_open(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    broken, backup = await fake("broken", mode="fail", status=500), await fake("backup")
    gw = await gateway(make_config(
        records_path, {"m1": [("broken", broken.url)], "m2": [("backup", backup.url)]},
        routing={"default": ["m1", "m2"]},
        pool_settings={"retry": {"attempts": 1},
                       "circuit_breaker": {"failure_threshold": 1, "open_s": 30}}))

    for i in range(5):
        response = await gw.chat("auto", f"q{i}")
        assert response.status_code == 200
        assert response.headers["x-switchyard-model"] == "m2"

    assert broken.inference_count == 1


async def test_long_retry_after_gives_up_with_429_and_the_wait(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    limited = await fake("limited")
    limited.behaviour = Behaviour(mode="rate_limit", retry_after="120")
    gw = await gateway(make_config(records_path, {"m1": [("limited", limited.url)]},
                                   pool_settings={"retry": {"max_retry_after_s": 5}}))

    response = await gw.chat("m1")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["retry-after"]) == 120
    assert len(limited.inference_requests()) == 1  # no pointless retry before the wait
