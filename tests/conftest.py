"""Shared fixtures: free ports, fake OpenAI backends and an in-process gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.harness import RunningGateway, free_port, start_gateway
from tests.fakes.server import Behaviour, FakeBackend

pytest_plugins = ["tests.fixtures_pg"]  # embedded PostgreSQL (session-scoped)

StartFake = Callable[..., Awaitable[FakeBackend]]
StartGateway = Callable[[Mapping[str, Any]], Awaitable[RunningGateway]]


@pytest.fixture
def port() -> int:
    """A TCP port that was free a moment ago."""
    return free_port()


@pytest.fixture
def records_path(tmp_path: Path) -> Path:
    return tmp_path / "records" / "routes.jsonl"


@pytest.fixture
async def fake() -> AsyncIterator[StartFake]:
    """`await fake("a", mode="fail", ...)` starts a FakeBackend on a free port."""
    started: list[FakeBackend] = []

    async def start(name: str = "fake", mode: str = "fixed", **options: Any) -> FakeBackend:
        backend = FakeBackend(name=name, behaviour=Behaviour(mode=mode, **options),
                              models=["m1", "m2", "m3"])
        await backend.start()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        await backend.stop()


@pytest.fixture
async def gateway() -> AsyncIterator[StartGateway]:
    """`await gateway(config_dict)` runs the app under uvicorn on a free port."""
    running: list[RunningGateway] = []

    async def start(config: Mapping[str, Any]) -> RunningGateway:
        gw = await start_gateway(config)
        running.append(gw)
        return gw

    yield start
    for gw in running:
        await gw.stop()
