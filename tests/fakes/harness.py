"""Run the gateway in-process (uvicorn on a real TCP port) and build test configurations."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
import yaml

FAST_POOL: dict[str, Any] = {
    "balancer": {"type": "round_robin"},
    "health": {"enabled": False},
    "outlier": {"consecutive_failures": 100},
    "retry": {"attempts": 3, "backoff_initial_s": 0.01, "backoff_max_s": 0.05, "jitter": 0.0},
    "circuit_breaker": {"failure_threshold": 100, "open_s": 30.0},
    "timeouts": {"connect_s": 0.5, "attempt_s": 2.0, "total_s": 8.0},
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """A base URL whose port refuses connections."""
    return f"http://127.0.0.1:{free_port()}/v1"


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_config(
    records_path: Path,
    pools: Mapping[str, Sequence[tuple[str, str]]],
    *,
    models: Sequence[Mapping[str, Any]] | None = None,
    pool_settings: Mapping[str, Any] | None = None,
    routing: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
    records: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A configuration dict: `pools` maps pool name -> [(endpoint name, url)].

    Without `models`, each pool `pN` gets one model `mN`-style name equal to the pool name with
    `pool-` stripped (pool `m1` serves model `m1`). The default route is the first model.
    """
    pool_list = [
        _merge(FAST_POOL, {"name": name, "endpoints": [{"name": e, "url": u} for e, u in eps],
                           **(pool_settings or {})})
        for name, eps in pools.items()
    ]
    model_list = list(models) if models is not None else [
        {"name": name, "pool": name, "input_usd_per_mtok": 2.0, "output_usd_per_mtok": 8.0}
        for name in pools
    ]
    routing_cfg: dict[str, Any] = {"default": model_list[0]["name"]}
    routing_cfg.update(routing or {})
    return {
        "server": {"host": "127.0.0.1", "port": 0, **(server or {})},
        "models": model_list,
        "pools": pool_list,
        "routing": routing_cfg,
        "records": {"path": str(records_path), **(records or {})},
        "metrics": {"enabled": True},
    }


class _PromptServer(uvicorn.Server):
    """uvicorn.Server that notices `should_exit` at once instead of on its 0.1 s tick."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_requested = asyncio.Event()

    async def main_loop(self) -> None:
        await self.on_tick(0)
        await self.exit_requested.wait()


@dataclass
class RunningGateway:
    """A gateway served by uvicorn inside the current event loop."""

    base_url: str
    records_path: Path
    server: _PromptServer
    task: asyncio.Task[None]
    client: httpx.AsyncClient
    stopped: bool = field(default=False)

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.client.aclose()
        self.server.should_exit = True
        self.server.exit_requested.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 5.0)
        except TimeoutError:
            self.server.force_exit = True
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self.task, 2.0)

    def records(self) -> list[dict[str, Any]]:
        """RouteRecords written so far (stop the gateway first to be sure they are flushed)."""
        lines: list[str] = []
        for path in sorted(self.records_path.parent.glob(self.records_path.name + "*")):
            lines += path.read_text(encoding="utf-8").splitlines()
        return [orjson.loads(line) for line in lines if line.strip()]

    async def chat(self, model: str = "m1", text: str = "hello", **extra: Any) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
        return await self.client.post("/v1/chat/completions", json=body)


async def start_gateway(config: Mapping[str, Any]) -> RunningGateway:
    from switchyard.config import load_config_text
    from switchyard.server.app import create_app

    parsed = load_config_text(yaml.safe_dump(dict(config)), source="<test config>")
    app = create_app(parsed)
    uv_config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on",
                               log_level="warning", access_log=False)
    server = _PromptServer(uv_config)
    task = asyncio.get_running_loop().create_task(server.serve())
    deadline = time.monotonic() + 10.0
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("gateway exited during startup (see log)")
        if time.monotonic() > deadline:
            raise RuntimeError("gateway did not start within 10 s")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10.0), verify=False)
    return RunningGateway(base_url, Path(config["records"]["path"]), server, task, client)


async def wait_until(predicate: Callable[[], bool | Awaitable[bool]], timeout_s: float = 3.0,
                     interval_s: float = 0.02) -> bool:
    """Poll `predicate` until true or the timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        value = await result if not isinstance(result, bool) else result
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval_s)


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Samples of one Prometheus sample name (e.g. `switchyard_requests_total`)."""
    from prometheus_client.parser import text_string_to_metric_families

    found: list[tuple[dict[str, str], float]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found.append((dict(sample.labels), float(sample.value)))
    return found


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(v for lab, v in metric_samples(text, name)
               if all(lab.get(k) == want for k, want in labels.items()))


def sse_events(raw: bytes) -> list[bytes]:
    """Split an SSE body into events (each without its trailing blank line)."""
    return [event for event in raw.replace(b"\r\n", b"\n").split(b"\n\n") if event.strip()]


def names(items: Iterable[Mapping[str, Any]], key: str = "id") -> set[str]:
    return {str(item[key]) for item in items}


def endpoint_name(value: str) -> str:
    """The endpoint part of an endpoint id (`pool/endpoint` or a bare `endpoint`)."""
    return value.rsplit("/", 1)[-1]
