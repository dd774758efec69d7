"""Gateway happy paths: pass-through, headers, model listing, probes, /v1/route."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from tests.conftest import StartFake, StartGateway
from tests.fakes import payloads
from tests.fakes.harness import endpoint_name, make_config, names

HEADERS = ("x-switchyard-model", "x-switchyard-decision", "x-switchyard-endpoint",
           "x-switchyard-request-id")


def _keyword_routing() -> dict[str, object]:
    return {
        "signals": [{"name": "code", "type": "keyword", "keywords": ["python", "bug"]}],
        "decisions": [{"name": "coding", "priority": 10, "when": {"signal": "code"},
                       "model": "m2"}],
        "default": "m1",
    }


async def test_chat_non_stream_is_passed_through_with_headers(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a")
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}))

    response = await gw.chat("m1", "hi")

    assert response.status_code == 200
    assert response.content == payloads.chat_completion("m1", backend.behaviour.content, "a")
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-switchyard-model"] == "m1"
    assert endpoint_name(response.headers["x-switchyard-endpoint"]) == "a"
    assert response.headers["x-switchyard-decision"]
    assert len(response.headers["x-switchyard-request-id"]) >= 8


async def test_request_fields_pass_through_unchanged(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a")
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}))
    body = {
        "model": "m1",
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": [{"type": "text", "text": "weather?"}]}],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "n": 2, "seed": 42, "logprobs": True, "top_logprobs": 3, "temperature": 0.25,
        "x_vendor_extension": {"nested": [1, 2, {"k": None}]},
        "metadata": {"team": "search"},
    }

    response = await gw.client.post("/v1/chat/completions", json=body)

    assert response.status_code == 200
    assert [r.json() for r in backend.inference_requests()] == [body]
    assert backend.inference_requests()[0].path == "/v1/chat/completions"


async def test_upstream_name_is_sent_upstream(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a")
    models = [{"name": "m1", "pool": "m1", "upstream_name": "org/real-model-7b"}]
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}, models=models))

    response = await gw.chat("m1")

    assert response.status_code == 200
    assert backend.inference_requests()[0].json()["model"] == "org/real-model-7b"
    assert response.headers["x-switchyard-model"] == "m1"


async def test_completions_endpoint(fake: StartFake, gateway: StartGateway,
                                    records_path: Path) -> None:
    backend = await fake("a")
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}))

    response = await gw.client.post("/v1/completions",
                                    json={"model": "m1", "prompt": "once upon", "echo": False})

    assert response.status_code == 200
    assert response.content == payloads.text_completion("m1", backend.behaviour.content, "a")
    assert backend.inference_requests()[0].path == "/v1/completions"
    assert backend.inference_requests()[0].json() == {
        "model": "m1", "prompt": "once upon", "echo": False}


async def test_auto_is_routed_by_rules(fake: StartFake, gateway: StartGateway,
                                       records_path: Path) -> None:
    a, b = await fake("a"), await fake("b")
    gw = await gateway(make_config(records_path, {"m1": [("a", a.url)], "m2": [("b", b.url)]},
                                   routing=_keyword_routing()))

    coding = await gw.chat("auto", "fix this Python bug")
    chatty = await gw.chat("auto", "tell me a story")

    assert (coding.status_code, chatty.status_code) == (200, 200)
    assert coding.headers["x-switchyard-model"] == "m2"
    assert coding.headers["x-switchyard-decision"] == "coding"
    assert endpoint_name(coding.headers["x-switchyard-endpoint"]) == "b"
    assert chatty.headers["x-switchyard-model"] == "m1"
    assert b.inference_requests()[0].json()["model"] == "m2"
    assert a.inference_requests()[0].json()["model"] == "m1"


async def test_decision_name_is_a_model_alias(fake: StartFake, gateway: StartGateway,
                                              records_path: Path) -> None:
    a, b = await fake("a"), await fake("b")
    gw = await gateway(make_config(records_path, {"m1": [("a", a.url)], "m2": [("b", b.url)]},
                                   routing=_keyword_routing()))

    response = await gw.chat("coding", "no keywords here")

    assert response.status_code == 200
    assert response.headers["x-switchyard-model"] == "m2"


async def test_models_lists_real_models_auto_and_decisions(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    a, b = await fake("a"), await fake("b")
    gw = await gateway(make_config(records_path, {"m1": [("a", a.url)], "m2": [("b", b.url)]},
                                   routing=_keyword_routing()))

    response = await gw.client.get("/v1/models")

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert names(body["data"]) == {"m1", "m2", "auto", "coding"}


async def test_route_explains_without_calling_a_model(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    a, b = await fake("a"), await fake("b")
    gw = await gateway(make_config(records_path, {"m1": [("a", a.url)], "m2": [("b", b.url)]},
                                   routing=_keyword_routing()))

    response = await gw.client.post("/v1/route", json={
        "model": "auto", "messages": [{"role": "user", "content": "a python question"}]})

    assert response.status_code == 200
    text = response.text
    assert '"coding"' in text and '"m2"' in text
    assert "trace" in response.json() or "trace" in text
    assert a.inference_count == b.inference_count == 0


async def test_healthz_and_readyz_when_healthy(fake: StartFake, gateway: StartGateway,
                                               records_path: Path) -> None:
    backend = await fake("a")
    config = make_config(records_path, {"m1": [("a", backend.url)]},
                         pool_settings={"health": {"enabled": True, "interval_s": 0.1}})
    gw = await gateway(config)

    health = await gw.client.get("/healthz")
    ready = await gw.client.get("/readyz")

    assert health.status_code == 200
    assert ready.status_code == 200


async def test_every_response_carries_a_request_id(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a")
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}))

    ok = await gw.chat("m1")
    bad = await gw.client.post("/v1/chat/completions", content=b"{",
                               headers={"content-type": "application/json"})
    ids = {ok.headers.get("x-switchyard-request-id"), bad.headers.get("x-switchyard-request-id")}

    assert None not in ids and "" not in ids and len(ids) == 2
    for header in HEADERS:
        assert header in ok.headers


async def test_concurrent_requests_are_all_answered(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    a, b = await fake("a", mode="slow", delay_s=0.05), await fake("b", mode="slow", delay_s=0.05)
    gw = await gateway(make_config(records_path, {"m1": [("a", a.url), ("b", b.url)]}))

    responses = await asyncio.gather(*(gw.chat("m1", f"q{i}") for i in range(40)))

    assert [r.status_code for r in responses] == [200] * 40
    assert a.inference_count + b.inference_count == 40
    assert a.inference_count >= 10 and b.inference_count >= 10
    contents = {orjson.loads(r.content)["system_fingerprint"] for r in responses}
    assert contents == {"a", "b"}


async def test_upstream_api_key_is_sent_and_client_credentials_are_not(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a")
    config = make_config(records_path, {"m1": [("a", backend.url)]},
                         server={"api_keys": {"sk-client": "team"}})
    config["pools"][0]["endpoints"][0]["api_key"] = "sk-upstream-secret"
    gw = await gateway(config)

    response = await gw.client.post(
        "/v1/chat/completions",
        json={"model": "m1", "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": "Bearer sk-client", "x-switchyard-tenant": "spoofed",
                 "cookie": "session=abc"})

    assert response.status_code == 200
    sent = backend.inference_requests()[0].headers
    assert sent["authorization"] == "Bearer sk-upstream-secret"
    assert "cookie" not in sent and "x-switchyard-tenant" not in sent
    assert "sk-client" not in str(sent)


async def test_route_reports_a_block_without_calling_a_model(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    backend = await fake("a")
    routing = {"signals": [{"name": "bad", "type": "keyword", "keywords": ["forbidden"]}],
               "decisions": [{"name": "blocked", "priority": 9, "when": {"signal": "bad"},
                              "action": "block"}],
               "default": "m1"}
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}, routing=routing))

    response = await gw.client.post("/v1/route", json={
        "model": "auto", "messages": [{"role": "user", "content": "forbidden words"}]})

    assert response.status_code == 200
    assert '"blocked"' in response.text and '"block"' in response.text
    assert backend.inference_count == 0
