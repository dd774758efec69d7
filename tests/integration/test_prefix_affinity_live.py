"""Live gateway with KV-aware balancers in front of fake backends: multi-turn conversations stay
on one replica while distinct conversations spread over the pool."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import StartFake, StartGateway
from tests.fakes.harness import endpoint_name, make_config

REPLICAS = ("a", "b", "c", "d")
CONVERSATIONS = 8
TURNS = 4


def conversation_turn(conversation: int, turn: int) -> list[dict[str, Any]]:
    """The messages of `turn` (0-based): every earlier turn repeated, then a new question."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant for the switchyard tests."}]
    for t in range(turn + 1):
        messages.append({"role": "user",
                         "content": f"conversation {conversation}, question {t}: " + "x" * 300})
        if t < turn:
            messages.append({"role": "assistant", "content": f"answer {t} " + "y" * 200})
    return messages


async def run_conversations(fake: StartFake, gateway: StartGateway, records_path: Path,
                            balancer: dict[str, Any]) -> dict[int, list[str]]:
    backends = [await fake(name) for name in REPLICAS]
    config = make_config(records_path, {"m1": [(b.name, b.url) for b in backends]},
                         pool_settings={"balancer": balancer})
    gw = await gateway(config)
    served: dict[int, list[str]] = defaultdict(list)
    for turn in range(TURNS):  # interleaved: turn 0 of every conversation, then turn 1, ...
        for conversation in range(CONVERSATIONS):
            body = {"model": "m1", "messages": conversation_turn(conversation, turn)}
            response = await gw.client.post("/v1/chat/completions", json=body)
            assert response.status_code == 200, response.text
            served[conversation].append(endpoint_name(response.headers["x-switchyard-endpoint"]))
    return served


async def test_prefix_affinity_keeps_conversations_and_spreads_them(
    fake: StartFake, gateway: StartGateway, records_path: Path
) -> None:
    served = await run_conversations(fake, gateway, records_path, {"type": "prefix_affinity"})

    for conversation, endpoints in served.items():
        assert len(set(endpoints)) == 1, f"conversation {conversation} moved: {endpoints}"
    homes = [endpoints[0] for endpoints in served.values()]
    assert set(homes) == set(REPLICAS)  # 8 conversations over 4 replicas, none idle
    assert max(homes.count(name) for name in REPLICAS) == CONVERSATIONS // len(REPLICAS)


@pytest.mark.parametrize("balancer", [{"type": "dualmap"}, {"type": "consistent_hash"},
                                      {"type": "session_affinity"}])
async def test_hash_affinity_balancers_keep_conversations_live(
    fake: StartFake, gateway: StartGateway, records_path: Path, balancer: dict[str, Any]
) -> None:
    served = await run_conversations(fake, gateway, records_path, balancer)

    for conversation, endpoints in served.items():
        assert len(set(endpoints)) == 1, f"conversation {conversation} moved: {endpoints}"
    assert len({endpoints[0] for endpoints in served.values()}) >= 2
