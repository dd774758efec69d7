"""The root configuration model and cross-reference checks."""

from __future__ import annotations

from pydantic import Field

from switchyard.config.base import StrictModel
from switchyard.config.pools import PoolConfig
from switchyard.config.routing import RoutingConfig

Path = tuple[str | int, ...]


class ServerConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    api_keys: dict[str, str] = Field(
        default_factory=dict, description="API key -> tenant; empty = no authentication"
    )
    tenant_header: str = "x-switchyard-tenant"
    graceful_shutdown_s: float = Field(default=10.0, ge=0)


class ModelConfig(StrictModel):
    name: str = Field(min_length=1)
    pool: str
    upstream_name: str | None = Field(default=None, description="model name sent upstream")
    input_usd_per_mtok: float = Field(default=0.0, ge=0)
    output_usd_per_mtok: float = Field(default=0.0, ge=0)
    context_window: int = Field(default=8192, gt=0)
    tags: list[str] = Field(default_factory=list)

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_usd_per_mtok + completion_tokens * self.output_usd_per_mtok
        ) / 1e6


class RecordsConfig(StrictModel):
    enabled: bool = True
    path: str = "records/routes.jsonl"
    max_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    backups: int = Field(default=5, ge=0)
    include_prompts: bool = False


class MetricsConfig(StrictModel):
    enabled: bool = True


class SwitchyardConfig(StrictModel):
    server: ServerConfig = Field(default_factory=ServerConfig)
    models: list[ModelConfig] = Field(min_length=1)
    pools: list[PoolConfig] = Field(min_length=1)
    routing: RoutingConfig
    records: RecordsConfig = Field(default_factory=RecordsConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)

    def model_by_name(self) -> dict[str, ModelConfig]:
        return {m.name: m for m in self.models}

    def pool_by_name(self) -> dict[str, PoolConfig]:
        return {p.name: p for p in self.pools}


def _duplicates(names: list[str]) -> list[int]:
    seen: set[str] = set()
    dup: list[int] = []
    for index, name in enumerate(names):
        if name in seen:
            dup.append(index)
        seen.add(name)
    return dup


def cross_reference_problems(cfg: SwitchyardConfig) -> list[tuple[Path, str]]:
    """Problems pydantic cannot see: names that must exist elsewhere, duplicates."""
    problems: list[tuple[Path, str]] = []
    pools = cfg.pool_by_name()
    models = cfg.model_by_name()
    for i in _duplicates([m.name for m in cfg.models]):
        problems.append((("models", i, "name"), f"duplicate model name {cfg.models[i].name!r}"))
    for i in _duplicates([p.name for p in cfg.pools]):
        problems.append((("pools", i, "name"), f"duplicate pool name {cfg.pools[i].name!r}"))
    for pi, pool in enumerate(cfg.pools):
        for ei in _duplicates([e.name for e in pool.endpoints]):
            problems.append(((("pools", pi, "endpoints", ei, "name")), "duplicate endpoint name"))
    for i, model in enumerate(cfg.models):
        if model.pool not in pools:
            problems.append(
                (("models", i, "pool"), f"unknown pool {model.pool!r}; pools: {sorted(pools)}")
            )
        if model.name == "auto" or model.name in {d.name for d in cfg.routing.decisions}:
            problems.append((("models", i, "name"), f"{model.name!r} is reserved as a routed alias"))
    signal_names = [s.name for s in cfg.routing.signals]
    for i in _duplicates(signal_names):
        problems.append((("routing", "signals", i, "name"), "duplicate signal name"))
    decision_names = [d.name for d in cfg.routing.decisions]
    for i in _duplicates(decision_names):
        problems.append((("routing", "decisions", i, "name"), "duplicate decision name"))
    for di, decision in enumerate(cfg.routing.decisions):
        key = "model" if decision.model is not None else "models"
        for ti, target in enumerate(decision.targets):
            if target not in models:
                path: Path = ("routing", "decisions", di, key)
                if key == "models":
                    path = (*path, ti)
                problems.append((path, f"unknown model {target!r}; models: {sorted(models)}"))
        for name in sorted(decision.when.signal_names() - set(signal_names)):
            problems.append(
                (("routing", "decisions", di, "when"), f"unknown signal {name!r}")
            )
    for ti, target in enumerate(cfg.routing.default_models):
        if target not in models:
            path = ("routing", "default") if isinstance(cfg.routing.default, str) else (
                "routing", "default", ti)
            problems.append((path, f"unknown model {target!r}; models: {sorted(models)}"))
    return problems
