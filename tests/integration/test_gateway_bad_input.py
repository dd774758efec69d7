"""Every bad input gets an OpenAI error envelope with the right status; never a traceback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import StartFake, StartGateway
from tests.fakes.harness import RunningGateway, closed_port_url, make_config, wait_until

JSON = {"content-type": "application/json"}
MESSAGES = [{"role": "user", "content": "hello"}]


def assert_envelope(response: httpx.Response, status: int, param: str | None = None) -> (
        dict[str, Any]):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
        assert param in error["message"]
    assert response.headers.get("x-switchyard-request-id")
    return dict(error)


@pytest.fixture
async def gw(fake: StartFake, gateway: StartGateway, records_path: Path) -> (
        AsyncIterator[RunningGateway]):
    backend = await fake("a")
    yield await gateway(make_config(
        records_path, {"m1": [("a", backend.url)]}, server={"max_body_bytes": 2048},
        routing={"signals": [{"name": "bad", "type": "keyword", "keywords": ["forbidden"]}],
                 "decisions": [{"name": "blocked", "priority": 100, "when": {"signal": "bad"},
                                "action": "block", "message": "no forbidden topics"}],
                 "default": "m1"}))


async def test_malformed_json_is_400(gw: RunningGateway) -> None:
    response = await gw.client.post("/v1/chat/completions", content=b'{"model": "m1", ',
                                    headers=JSON)
    error = assert_envelope(response, 400)
    assert error["type"] == "invalid_request_error"


async def test_non_object_json_is_400(gw: RunningGateway) -> None:
    response = await gw.client.post("/v1/chat/completions", content=b"[1, 2]", headers=JSON)
    assert_envelope(response, 400)


async def test_missing_messages_is_400_naming_it(gw: RunningGateway) -> None:
    response = await gw.client.post("/v1/chat/completions", json={"model": "m1"})
    assert_envelope(response, 400, param="messages")


async def test_missing_model_is_400_naming_it(gw: RunningGateway) -> None:
    response = await gw.client.post("/v1/chat/completions", json={"messages": MESSAGES})
    assert_envelope(response, 400, param="model")


async def test_missing_prompt_on_completions_is_400(gw: RunningGateway) -> None:
    response = await gw.client.post("/v1/completions", json={"model": "m1"})
    assert_envelope(response, 400, param="prompt")


async def test_unknown_model_is_404_listing_valid_names(gw: RunningGateway) -> None:
    response = await gw.client.post("/v1/chat/completions",
                                    json={"model": "gpt-nope", "messages": MESSAGES})
    error = assert_envelope(response, 404)
    for valid in ("m1", "auto", "blocked"):
        assert valid in error["message"]


async def test_body_over_limit_is_413(gw: RunningGateway) -> None:
    big = {"model": "m1", "messages": [{"role": "user", "content": "x" * 4000}]}
    response = await gw.client.post("/v1/chat/completions", json=big)
    assert_envelope(response, 413)


async def test_chunked_body_over_limit_is_413(gw: RunningGateway) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"model": "m1", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}]}'

    response = await gw.client.post("/v1/chat/completions", content=body(), headers=JSON)
    assert_envelope(response, 413)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_wrong_content_type_is_415(gw: RunningGateway, content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await gw.client.post(
        "/v1/chat/completions", content=b'{"model": "m1", "messages": []}', headers=headers)
    assert_envelope(response, 415)


async def test_content_type_with_charset_is_accepted(gw: RunningGateway) -> None:
    response = await gw.client.post(
        "/v1/chat/completions", content=b'{"model": "m1", "messages": [{"role": "user", '
        b'"content": "hi"}]}', headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 200


async def test_block_decision_is_refused_with_its_message(gw: RunningGateway) -> None:
    response = await gw.chat("auto", "tell me something forbidden")
    error = assert_envelope(response, 400)
    assert error["message"] == "no forbidden topics"
    assert error["code"] == "content_policy_violation"
    assert response.headers["x-switchyard-decision"] == "blocked"


async def test_block_applies_to_concrete_models_too(gw: RunningGateway) -> None:
    response = await gw.chat("m1", "forbidden stuff")
    assert_envelope(response, 400)


async def test_unknown_route_and_wrong_method_are_enveloped(gw: RunningGateway) -> None:
    missing = await gw.client.get("/v1/nothing-here")
    wrong = await gw.client.get("/v1/chat/completions")
    assert missing.status_code == 404 and "error" in missing.json()
    assert wrong.status_code == 405 and "error" in wrong.json()


async def test_upstream_garbage_is_502(fake: StartFake, gateway: StartGateway,
                                       records_path: Path) -> None:
    backend = await fake("a", mode="garbage")
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]},
                                   pool_settings={"retry": {"attempts": 1}}))
    response = await gw.chat("m1")
    assert_envelope(response, 502)


async def test_all_replicas_down_is_503(fake: StartFake, gateway: StartGateway,
                                        records_path: Path) -> None:
    down = await fake("a", mode="down")
    health = {"enabled": True, "interval_s": 0.05, "timeout_s": 0.5, "failure_threshold": 1}
    gw = await gateway(make_config(
        records_path, {"m1": [("a", down.url), ("b", closed_port_url())]},
        pool_settings={"health": health}))

    async def not_ready() -> bool:
        return (await gw.client.get("/readyz")).status_code == 503

    assert await wait_until(not_ready, timeout_s=3.0)
    requests_before = down.inference_count
    response = await gw.chat("m1")
    assert_envelope(response, 503)
    assert down.inference_count == requests_before


async def test_all_replicas_refusing_is_an_error_not_a_hang(
    gateway: StartGateway, records_path: Path
) -> None:
    gw = await gateway(make_config(records_path,
                                   {"m1": [("a", closed_port_url()), ("b", closed_port_url())]}))
    response = await gw.chat("m1")
    assert response.status_code in (502, 503)
    assert_envelope(response, response.status_code)


async def test_upstream_4xx_is_not_retried_and_passed_back(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    a = await fake("a", mode="fail", status=400)
    gw = await gateway(make_config(records_path, {"m1": [("a", a.url)]}))
    response = await gw.chat("m1")
    assert response.status_code == 400
    assert "error" in response.json()
    assert a.inference_count == 1
