"""The local fleet: every `type: llamacpp` endpoint of a configuration, started and stopped as one.

`LocalFleet.from_config(cfg)` is cheap and does no I/O; `await start()` resolves and verifies each
model file (off the event loop), starts the servers concurrently and returns once all answer;
`await aclose()` stops them. A configuration without llama.cpp endpoints gives an empty fleet
whose start/aclose do nothing, so the gateway's lifespan can call them unconditionally.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from switchyard.config.pools import LlamaCppEndpointConfig
from switchyard.config.schema import SwitchyardConfig
from switchyard.errors import ConfigError
from switchyard.local.llamacpp_process import LlamaCppLaunch, LlamaCppProcess, RestartPolicy
from switchyard.local.model_sources import default_cache_dir, resolve_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LocalServerPlan:
    pool: str
    endpoint: LlamaCppEndpointConfig
    model_alias: str


def plan_local_servers(cfg: SwitchyardConfig) -> list[LocalServerPlan]:
    """The llama.cpp endpoints of `cfg`, each with the model name the gateway sends to it."""
    plans: list[LocalServerPlan] = []
    ports: dict[int, str] = {}
    problems: list[str] = []
    for pool in cfg.pools:
        served = [m.upstream_name or m.name for m in cfg.models if m.pool == pool.name]
        for endpoint in pool.endpoints:
            if not isinstance(endpoint, LlamaCppEndpointConfig):
                continue
            if endpoint.port in ports:
                problems.append(f"pools.{pool.name}.endpoints.{endpoint.name}.port: port "
                                f"{endpoint.port} is also used by {ports[endpoint.port]}")
            ports[endpoint.port] = f"{pool.name}/{endpoint.name}"
            alias = served[0] if served else endpoint.name
            plans.append(LocalServerPlan(pool=pool.name, endpoint=endpoint, model_alias=alias))
    if problems:
        raise ConfigError(problems)
    return plans


class LocalFleet:
    def __init__(self, plans: Sequence[LocalServerPlan], *, cache_dir: Path | None = None,
                 log_dir: Path | None = None, policy: RestartPolicy | None = None) -> None:
        self.plans = list(plans)
        self.cache_dir = cache_dir or default_cache_dir()
        self.log_dir = log_dir or self.cache_dir.parent / "logs"
        self.policy = policy
        self.processes: dict[str, LlamaCppProcess] = {}

    @classmethod
    def from_config(cls, cfg: SwitchyardConfig, *, cache_dir: Path | None = None,
                    log_dir: Path | None = None,
                    policy: RestartPolicy | None = None) -> LocalFleet:
        return cls(plan_local_servers(cfg), cache_dir=cache_dir, log_dir=log_dir, policy=policy)

    def __len__(self) -> int:
        return len(self.plans)

    def pids(self) -> list[int]:
        return [pid for process in self.processes.values() if (pid := process.pid) is not None]

    async def start(self) -> None:
        """Verify every model, then start all servers; on any failure stop those started."""
        if not self.plans or self.processes:
            return
        launches = await asyncio.gather(*(asyncio.to_thread(self._launch_for, plan)
                                          for plan in self.plans))
        processes = {launch.name: LlamaCppProcess(launch, self.policy) for launch in launches}
        self.processes = processes
        results = await asyncio.gather(*(p.start() for p in processes.values()),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.aclose()
            raise failures[0]
        logger.info("local fleet ready: %s", ", ".join(sorted(processes)))

    async def aclose(self) -> None:
        processes, self.processes = self.processes, {}
        await asyncio.gather(*(p.stop() for p in processes.values()), return_exceptions=True)

    def _launch_for(self, plan: LocalServerPlan) -> LlamaCppLaunch:
        endpoint = plan.endpoint
        model_path = resolve_model(endpoint.model, self.cache_dir, endpoint.sha256)
        return LlamaCppLaunch(
            name=endpoint.name,
            model_path=model_path,
            model_alias=plan.model_alias,
            port=endpoint.port,
            log_path=self.log_dir / f"{endpoint.name}.log",
            host=endpoint.host,
            threads=endpoint.threads,
            n_ctx=endpoint.n_ctx,
            chat_format=endpoint.chat_format,
            api_key=endpoint.api_key,
            extra_args=tuple(endpoint.extra_args),
            startup_timeout_s=endpoint.startup_timeout_s,
        )
