"""Supervise one llama.cpp server child process (`switchyard.local.llamacpp_server`, a thin
wrapper around llama-cpp-python's `python -m llama_cpp.server` taking the same flags).

The child runs in its own process group (so a terminal's Ctrl-C reaches only the gateway, which
then stops its children in order) and asks the kernel to SIGTERM it if the gateway dies without
cleaning up (PR_SET_PDEATHSIG, set by a tiny launcher before it execs the server, so no
`preexec_fn` runs in the multi-threaded gateway). `start()` returns once the server answers
`GET /v1/models`; a watcher restarts a child that dies, with exponential back-off; `stop()`
sends SIGTERM to the group, then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic

import httpx

from switchyard.errors import SwitchyardError

logger = logging.getLogger(__name__)

_LOG_TAIL_BYTES = 2000


class LlamaCppStartError(SwitchyardError):
    """A llama.cpp server did not become ready (exited, timed out, or its port is taken)."""

    error_type = "local_model_error"


@dataclass(frozen=True, slots=True)
class LlamaCppLaunch:
    """Everything needed to start one llama.cpp server."""

    name: str
    model_path: Path
    model_alias: str
    port: int
    log_path: Path
    host: str = "127.0.0.1"
    threads: int = 1
    n_ctx: int = 2048
    chat_format: str | None = None
    api_key: str | None = None
    extra_args: tuple[str, ...] = ()
    startup_timeout_s: float = 180.0
    python: str = sys.executable
    server_module: str = "switchyard.local.llamacpp_server"  # tests use a stand-in server

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def server_argv(self) -> list[str]:
        argv = [
            self.python, "-m", self.server_module,
            "--model", str(self.model_path),
            "--model_alias", self.model_alias,
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.threads),
            "--n_threads_batch", str(self.threads),
        ]
        if self.chat_format is not None:
            argv += ["--chat_format", self.chat_format]
        if self.api_key is not None:
            argv += ["--api_key", self.api_key]
        return argv + list(self.extra_args)

    def argv(self) -> list[str]:
        """The launcher (dies with this process) followed by the server command."""
        launcher = [self.python, "-m", "switchyard.local.child_launcher", str(os.getpid()), "--"]
        return launcher + self.server_argv()


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    stable_after_s: float = 60.0  # an uptime this long resets the back-off
    stop_grace_s: float = 10.0


@dataclass(slots=True)
class ProcessStats:
    starts: int = 0
    restarts: int = 0
    last_exit_code: int | None = None
    ready_seconds: list[float] = field(default_factory=list)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _log_tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - _LOG_TAIL_BYTES))
            return handle.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


class LlamaCppProcess:
    """One supervised llama.cpp server. Use on one event loop: `await start()` … `await stop()`."""

    def __init__(self, launch: LlamaCppLaunch, policy: RestartPolicy | None = None) -> None:
        self.launch = launch
        self.policy = policy or RestartPolicy()
        self.stats = ProcessStats()
        self.state = "stopped"  # stopped | starting | ready | backoff | failed
        self._process: asyncio.subprocess.Process | None = None
        self._started_at = 0.0
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self) -> None:
        """Start the server and return once it answers; then keep it alive until `stop()`."""
        if self._supervisor is not None:
            return
        self._stopping = False
        if not port_is_free(self.launch.host, self.launch.port):
            self.state = "failed"
            raise LlamaCppStartError(
                f"llama.cpp server {self.launch.name!r}: port {self.launch.port} on "
                f"{self.launch.host} is already in use; choose another `port:`"
            )
        await self._spawn_until_ready()
        self._supervisor = asyncio.create_task(
            self._supervise(), name=f"llamacpp-supervisor-{self.launch.name}"
        )

    async def stop(self) -> None:
        """Stop supervising, then SIGTERM the process group; SIGKILL after the grace period."""
        self._stopping = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        await self._terminate()
        self.state = "stopped"

    async def _spawn_until_ready(self) -> None:
        launch = self.launch
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.state = "starting"
        started = monotonic()
        with launch.log_path.open("ab") as log:
            log.write(f"\n=== switchyard: starting {launch.name} ===\n".encode())
            log.flush()
            env = {**os.environ, "OMP_NUM_THREADS": str(launch.threads)}
            self._process = await asyncio.create_subprocess_exec(
                *launch.argv(), stdin=asyncio.subprocess.DEVNULL, stdout=log,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True, env=env,
            )
        self.stats.starts += 1
        self._started_at = monotonic()
        logger.info("llama.cpp %s: started pid %d on port %d",
                    launch.name, self._process.pid, launch.port)
        try:
            await self._wait_until_ready(self._process)
        except BaseException:
            await self._terminate()
            self.state = "failed"
            raise
        self.stats.ready_seconds.append(monotonic() - started)
        self.state = "ready"
        logger.info("llama.cpp %s: ready after %.1fs", launch.name, monotonic() - started)

    async def _wait_until_ready(self, process: asyncio.subprocess.Process) -> None:
        deadline = monotonic() + self.launch.startup_timeout_s
        headers = {}
        if self.launch.api_key is not None:
            headers["Authorization"] = f"Bearer {self.launch.api_key}"
        async with httpx.AsyncClient(timeout=2.0, headers=headers, trust_env=False) as client:
            while monotonic() < deadline:
                if process.returncode is not None:
                    raise self._start_error(f"exited with code {process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    answer = await client.get(f"{self.launch.base_url}/models")
                    if answer.status_code == 200:
                        return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), timeout=0.25)
        raise self._start_error(f"did not answer within {self.launch.startup_timeout_s:.0f}s")

    def _start_error(self, problem: str) -> LlamaCppStartError:
        tail = _log_tail(self.launch.log_path)
        return LlamaCppStartError(
            f"llama.cpp server {self.launch.name!r} {problem}; log {self.launch.log_path}"
            + (f":\n{tail}" if tail else "")
        )

    async def _supervise(self) -> None:
        backoff = self.policy.initial_backoff_s
        while not self._stopping:
            process = self._process
            if process is None:
                return
            code = await process.wait()
            if self._stopping:
                return
            self.stats.last_exit_code = code
            if monotonic() - self._started_at >= self.policy.stable_after_s:
                backoff = self.policy.initial_backoff_s
            self.state = "backoff"
            logger.warning("llama.cpp %s: exited with code %s; restarting in %.1fs",
                           self.launch.name, code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.policy.max_backoff_s)
            try:
                await self._spawn_until_ready()
            except LlamaCppStartError as exc:
                logger.error("llama.cpp %s: restart failed: %s", self.launch.name, exc.message)
                continue
            self.stats.restarts += 1

    async def _terminate(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=self.policy.stop_grace_s)
        except TimeoutError:
            logger.warning("llama.cpp %s: no exit %.0fs after SIGTERM; sending SIGKILL",
                           self.launch.name, self.policy.stop_grace_s)
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def alive_pids(pids: Sequence[int]) -> list[int]:
    """The subset of `pids` that still exist (zombies excluded); used by tests and `demo`."""
    alive: list[int] = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if status != "Z":
            alive.append(pid)
    return alive
