"""The llama.cpp process supervisor with real child processes (a stand-in server, so it is fast):
readiness, start failures with the log tail, restart with back-off, SIGTERM → SIGKILL on stop,
and children that die with the gateway even when it is SIGKILLed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.fakes.harness import free_port

from switchyard.local.llamacpp_process import (
    LlamaCppLaunch,
    LlamaCppProcess,
    LlamaCppStartError,
    RestartPolicy,
    alive_pids,
)

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
FAST = RestartPolicy(initial_backoff_s=0.1, max_backoff_s=0.4, stable_after_s=60,
                     stop_grace_s=0.5)


@pytest.fixture(autouse=True)
def _children_find_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))


def launch(tmp_path: Path, *flags: str, timeout_s: float = 20.0) -> LlamaCppLaunch:
    return LlamaCppLaunch(
        name="fake", model_path=tmp_path / "model.gguf", model_alias="fake",
        port=free_port(), log_path=tmp_path / "logs" / "fake.log", extra_args=flags,
        startup_timeout_s=timeout_s, server_module="tests.fakes.llama_server",
    )


async def test_start_returns_once_the_server_answers_and_stop_ends_it(tmp_path: Path) -> None:
    server = LlamaCppProcess(launch(tmp_path, "--startup-delay", "0.5"), FAST)
    await server.start()
    try:
        pid = server.pid
        assert pid is not None and server.state == "ready"
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"{server.launch.base_url}/models")
        assert answer.status_code == 200
        assert "--model_alias" in server.launch.server_argv()
    finally:
        await server.stop()
    assert server.pid is None and alive_pids([pid]) == []


async def test_a_server_that_exits_at_start_reports_the_log_tail(tmp_path: Path) -> None:
    server = LlamaCppProcess(launch(tmp_path, "--exit-at-once"), FAST)
    with pytest.raises(LlamaCppStartError) as caught:
        await server.start()
    assert "exited with code 4" in caught.value.message
    assert "cannot load model" in caught.value.message
    assert server.state == "failed"


async def test_a_taken_port_is_reported_before_anything_starts(tmp_path: Path) -> None:
    spec = launch(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", spec.port))
        busy.listen()
        with pytest.raises(LlamaCppStartError, match=f"port {spec.port} .* already in use"):
            await LlamaCppProcess(spec, FAST).start()
    assert not spec.log_path.exists()


async def test_a_server_that_never_answers_times_out_and_is_killed(tmp_path: Path) -> None:
    server = LlamaCppProcess(launch(tmp_path, "--startup-delay", "30", timeout_s=1.0), FAST)
    started = time.monotonic()
    with pytest.raises(LlamaCppStartError, match="did not answer within 1s"):
        await server.start()
    assert time.monotonic() - started < 10
    assert server.pid is None


async def test_a_crashing_server_is_restarted_with_growing_back_off(tmp_path: Path) -> None:
    server = LlamaCppProcess(launch(tmp_path, "--exit-after", "0.5"), FAST)
    await server.start()
    first_pid = server.pid
    try:
        deadline = time.monotonic() + 20
        while server.stats.restarts < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert server.stats.restarts >= 3
        assert server.stats.last_exit_code == 3
        assert server.stats.starts == server.stats.restarts + 1
        assert server.pid != first_pid
    finally:
        await server.stop()
    log = server.launch.log_path.read_text()
    assert log.count("=== switchyard: starting fake ===") == server.stats.starts


async def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    server = LlamaCppProcess(launch(tmp_path, "--ignore-sigterm"), FAST)
    await server.start()
    pid = server.pid
    assert pid is not None
    started = time.monotonic()
    await server.stop()
    assert time.monotonic() - started >= FAST.stop_grace_s
    assert alive_pids([pid]) == []


GATEWAY_STAND_IN = """
import asyncio, sys
from pathlib import Path
from switchyard.local.llamacpp_process import LlamaCppLaunch, LlamaCppProcess

async def main():
    server = LlamaCppProcess(LlamaCppLaunch(
        name="fake", model_path=Path("m.gguf"), model_alias="fake", port=int(sys.argv[1]),
        log_path=Path(sys.argv[2]), server_module="tests.fakes.llama_server"))
    await server.start()
    print(server.pid, flush=True)
    await asyncio.sleep(300)

asyncio.run(main())
"""


def test_children_die_with_a_sigkilled_gateway(tmp_path: Path) -> None:
    gateway = subprocess.Popen(
        [sys.executable, "-c", GATEWAY_STAND_IN, str(free_port()), str(tmp_path / "fake.log")],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert gateway.stdout is not None
        child = int(gateway.stdout.readline())
        assert alive_pids([child]) == [child]
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(timeout=10)
        deadline = time.monotonic() + 10
        while alive_pids([child]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive_pids([child]) == []
    finally:
        gateway.kill()
        gateway.wait()
