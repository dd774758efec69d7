"""The root configuration model and cross-reference checks."""

from __future__ import annotations

from pydantic import Field

from switchyard.config.base import StrictModel
from switchyard.config.cache import CacheConfig
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
    cache: CacheConfig = Field(default_factory=CacheConfig)

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


def _name_problems(cfg: SwitchyardConfig) -> list[tuple[Path, str]]:
    problems: list[tuple[Path, str]] = []
    named: list[tuple[Path, list[str]]] = [
        (("models",), [m.name for m in cfg.models]),
        (("pools",), [p.name for p in cfg.pools]),
        (("routing", "signals"), [s.name for s in cfg.routing.signals]),
        (("routing", "decisions"), [d.name for d in cfg.routing.decisions]),
    ]
    for prefix, names in named:
        for i in _duplicates(names):
            problems.append(((*prefix, i, "name"), f"duplicate name {names[i]!r}"))
    seen: set[str] = set()  # endpoint names are global: headers and records name them alone
    for pi, pool in enumerate(cfg.pools):
        for ei, endpoint in enumerate(pool.endpoints):
            if endpoint.name in seen:
                message = f"duplicate endpoint name {endpoint.name!r} (must be unique across pools)"
                problems.append((("pools", pi, "endpoints", ei, "name"), message))
            seen.add(endpoint.name)
    decisions = {d.name for d in cfg.routing.decisions}
    for i, model in enumerate(cfg.models):
        if model.name == "auto" or model.name in decisions:
            message = f"{model.name!r} is reserved as a routed alias"
            problems.append((("models", i, "name"), message))
    return problems


def _unknown_model(path: Path, name: str, models: dict[str, ModelConfig]) -> tuple[Path, str]:
    return path, f"unknown model {name!r}; models: {sorted(models)}"


def cross_reference_problems(cfg: SwitchyardConfig) -> list[tuple[Path, str]]:
    """Problems pydantic cannot see: names that must exist elsewhere, duplicates."""
    problems = _name_problems(cfg)
    pools = cfg.pool_by_name()
    models = cfg.model_by_name()
    for i, model in enumerate(cfg.models):
        if model.pool not in pools:
            problems.append(
                (("models", i, "pool"), f"unknown pool {model.pool!r}; pools: {sorted(pools)}")
            )
    signal_names = {s.name for s in cfg.routing.signals}
    for di, decision in enumerate(cfg.routing.decisions):
        base: Path = ("routing", "decisions", di)
        if decision.model is not None and decision.model not in models:
            problems.append(_unknown_model((*base, "model"), decision.model, models))
        for ti, target in enumerate(decision.models):
            if target not in models:
                problems.append(_unknown_model((*base, "models", ti), target, models))
        for ci, target in enumerate(decision.strategy.candidates if decision.strategy else []):
            if target not in models:
                problems.append(_unknown_model((*base, "strategy", "candidates", ci), target,
                                               models))
        for name in sorted(decision.when.signal_names() - signal_names):
            problems.append(((*base, "when"), f"unknown signal {name!r}"))
        source = decision.target_signal
        if source is not None and source not in signal_names:
            problems.append(((*base, "models_from_signal"), f"unknown signal {source!r}"))
    default = cfg.routing.default
    targets = [(("routing", "default"), default)] if isinstance(default, str) else [
        (("routing", "default", ti), target) for ti, target in enumerate(default)
    ]
    for path, target in targets:
        if target not in models:
            problems.append(_unknown_model(path, target, models))
    return problems
