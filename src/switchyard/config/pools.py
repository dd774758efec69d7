"""Pool configuration: endpoints, balancer, health checks, retries, circuit breaker, timeouts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from switchyard.config.base import StrictModel


class EndpointConfig(StrictModel):
    """One replica speaking the OpenAI HTTP API. `url` is the base URL including `/v1`.

    YAML `type: openai` (the default when `type` is absent). `LlamaCppEndpointConfig` extends it.
    """

    type: Literal["openai", "llamacpp"] = "openai"
    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    api_key: str | None = None
    weight: float = Field(default=1.0, gt=0)
    max_concurrency: int = Field(default=0, ge=0, description="0 = unlimited")
    max_queue_wait_s: float = Field(default=30.0, ge=0)


class LlamaCppEndpointConfig(EndpointConfig):
    """A llama.cpp server that `switchyard serve` starts, supervises and stops itself.

    `model` is a model source name (`switchyard models list`) or a path to a GGUF file. The URL
    is derived (`http://{host}:{port}/v1`); such a server answers one request at a time, so
    `max_concurrency` is 1 and excess requests queue in the pool.
    """

    type: Literal["llamacpp"] = "llamacpp"
    model: str = Field(min_length=1, description="model source name or GGUF file path")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                               description="expected hash of a GGUF file path")
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    threads: int = Field(default=1, ge=1)
    n_ctx: int = Field(default=2048, ge=128)
    chat_format: str | None = None
    extra_args: list[str] = Field(default_factory=list)
    startup_timeout_s: float = Field(default=180.0, gt=0)
    max_concurrency: int = 1

    @model_validator(mode="before")
    @classmethod
    def _derive_url(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "url" in data:
            raise ValueError("`url` is derived from host and port for type: llamacpp; remove it")
        host, port = data.get("host", "127.0.0.1"), data.get("port", 0)  # missing port: own error
        return {**data, "url": f"http://{host}:{port}/v1"}

    @field_validator("max_concurrency")
    @classmethod
    def _one_at_a_time(cls, value: int) -> int:
        if value != 1:
            raise ValueError("a llama.cpp server answers one request at a time; use 1")
        return value


def _endpoint_type(value: Any) -> str:
    """Tag for the endpoint union; endpoints without `type` are OpenAI-compatible servers."""
    if isinstance(value, dict):
        return str(value.get("type", "openai"))
    return str(getattr(value, "type", "openai"))


AnyEndpointConfig = Annotated[
    Annotated[EndpointConfig, Tag("openai")]
    | Annotated[LlamaCppEndpointConfig, Tag("llamacpp")],
    Discriminator(
        _endpoint_type,
        custom_error_type="endpoint_type",
        custom_error_message="unknown endpoint type; use `openai` or `llamacpp`",
    ),
]


class RoundRobinBalancerConfig(StrictModel):
    type: Literal["round_robin"]


class WeightedBalancerConfig(StrictModel):
    type: Literal["weighted"]
    seed: int | None = None


class LeastOutstandingBalancerConfig(StrictModel):
    type: Literal["least_outstanding"]


class PowerOfTwoBalancerConfig(StrictModel):
    type: Literal["power_of_two"]
    seed: int | None = None


class LeastPendingTokensBalancerConfig(StrictModel):
    """Fewest queued prefill tokens (cache-blind, token-aware control)."""

    type: Literal["least_pending_tokens"]


class ConsistentHashBalancerConfig(StrictModel):
    """Consistent hashing on a prompt-prefix key with bounded loads (Mirrokni et al. 2018)."""

    type: Literal["consistent_hash"]
    load_factor: float = Field(default=1.25, gt=1.0, description="c: max load <= ceil(c*mean)")
    virtual_nodes: int = Field(default=100, ge=1)
    key_blocks: int = Field(default=2, ge=1, description="prefix blocks hashed into the key")


class PrefixAffinityBalancerConfig(StrictModel):
    """Longest approximate prefix match per replica unless load is imbalanced (SGLang-style)."""

    type: Literal["prefix_affinity"]
    cache_threshold: float = Field(
        default=0.3, ge=0.0, le=1.0,
        description="min matched share of the prompt to follow the cache (SGLang uses 0.5; a "
        "second chat turn repeats only ~40% of its text, so 0.3 keeps turn 2 in place)",
    )
    queue_signal: Literal["tokens", "requests"] = Field(
        default="tokens",
        description="shortest queue by queued prefill tokens, or by in-flight requests (SGLang)",
    )
    balance_abs_threshold: int = Field(default=32, ge=0)
    balance_rel_threshold: float = Field(default=1.0001, ge=1.0)
    max_blocks_per_endpoint: int = Field(default=4096, ge=1)


class DualMapBalancerConfig(StrictModel):
    """Two hash rings -> two affine candidates; pick by estimated TTFT; SLO switch; migration."""

    type: Literal["dualmap"]
    key_blocks: int = Field(default=2, ge=1)
    virtual_nodes: int = Field(default=100, ge=1)
    prefill_tokens_per_s: float = Field(default=10_000.0, gt=0)
    ttft_slo_s: float = Field(default=5.0, gt=0)
    switch_slo_fraction: float = Field(
        default=0.2, gt=0, le=1.0,
        description="drop affinity when the estimated queueing TTFT exceeds this x ttft_slo_s",
    )
    cache_weight: float = Field(
        default=1.0, ge=1.0, description="weight of uncached prefill time when choosing"
    )
    include_best_match: bool = Field(
        default=False, description="also consider the endpoint with the longest indexed prefix"
    )
    max_blocks_per_endpoint: int = Field(default=4096, ge=1)
    block_tokens: int = Field(default=512, ge=1)
    migrate_wait_s: float = Field(default=1.0, ge=0, description="queue wait that marks a hotspot")


class SessionAffinityBalancerConfig(StrictModel):
    """Sticky by conversation id / user (rendezvous hashing) with a load fallback."""

    type: Literal["session_affinity"]
    max_load_ratio: float = Field(default=1.5, ge=1.0)
    slack: int = Field(default=4, ge=0)


BalancerConfig = Annotated[
    RoundRobinBalancerConfig
    | WeightedBalancerConfig
    | LeastOutstandingBalancerConfig
    | PowerOfTwoBalancerConfig
    | LeastPendingTokensBalancerConfig
    | ConsistentHashBalancerConfig
    | PrefixAffinityBalancerConfig
    | DualMapBalancerConfig
    | SessionAffinityBalancerConfig,
    Field(discriminator="type"),
]


class HealthConfig(StrictModel):
    enabled: bool = True
    path: str = "/models"
    interval_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=2.0, gt=0)
    failure_threshold: int = Field(default=2, ge=1)
    success_threshold: int = Field(default=1, ge=1)


class OutlierConfig(StrictModel):
    """Passive ejection: consecutive failed requests mark an endpoint unhealthy."""

    consecutive_failures: int = Field(default=5, ge=1)


class RetryConfig(StrictModel):
    attempts: int = Field(default=3, ge=1, description="total attempts per model, first included")
    backoff_initial_s: float = Field(default=0.05, ge=0)
    backoff_max_s: float = Field(default=2.0, ge=0)
    jitter: float = Field(default=0.2, ge=0, le=1)
    honour_retry_after: bool = True
    max_retry_after_s: float = Field(default=10.0, ge=0)


class CircuitBreakerConfig(StrictModel):
    enabled: bool = True
    failure_threshold: int = Field(default=5, ge=1)
    open_s: float = Field(default=30.0, gt=0)
    half_open_max_probes: int = Field(default=1, ge=1)


class TimeoutsConfig(StrictModel):
    connect_s: float = Field(default=5.0, gt=0)
    attempt_s: float = Field(default=120.0, gt=0, description="one upstream attempt, whole body")
    total_s: float = Field(default=300.0, gt=0, description="all attempts of a request")


class PoolConfig(StrictModel):
    name: str = Field(min_length=1)
    endpoints: list[AnyEndpointConfig] = Field(min_length=1)
    balancer: BalancerConfig = Field(
        default_factory=lambda: RoundRobinBalancerConfig(type="round_robin")
    )
    health: HealthConfig = Field(default_factory=HealthConfig)
    outlier: OutlierConfig = Field(default_factory=OutlierConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
