"""Upstream answers real servers give: compressed bodies, JSON of an unexpected shape."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from tests.conftest import StartFake, StartGateway
from tests.fakes import payloads
from tests.fakes.harness import make_config


async def test_gzip_compressing_upstream(fake: StartFake, gateway: StartGateway,
                                         records_path: Path) -> None:
    backend = await fake("a", gzip=True)
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]}))

    response = await gw.chat("m1")

    assert response.status_code == 200
    assert response.json() == orjson.loads(
        payloads.chat_completion("m1", backend.behaviour.content, "a"))


@pytest.mark.parametrize("body", ["[1, 2]", "null", '"text"', '{"choices": 5, "usage": 7}'])
async def test_upstream_json_of_the_wrong_shape(fake: StartFake, gateway: StartGateway,
                                                records_path: Path, body: str) -> None:
    backend = await fake("a", mode="garbage", body=body)
    gw = await gateway(make_config(records_path, {"m1": [("a", backend.url)]},
                                   pool_settings={"retry": {"attempts": 1}}))

    response = await gw.chat("m1")

    assert response.status_code in (200, 502), response.text
    assert "Traceback" not in response.text
    if response.status_code == 502:
        assert response.json()["error"]["message"]
