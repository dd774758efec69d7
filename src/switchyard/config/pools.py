"""Pool configuration: endpoints, balancer, health checks, retries, circuit breaker, timeouts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from switchyard.config.base import StrictModel


class EndpointConfig(StrictModel):
    """One replica speaking the OpenAI HTTP API. `url` is the base URL including `/v1`."""

    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    api_key: str | None = None
    weight: float = Field(default=1.0, gt=0)
    max_concurrency: int = Field(default=0, ge=0, description="0 = unlimited")
    max_queue_wait_s: float = Field(default=30.0, ge=0)


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


BalancerConfig = Annotated[
    RoundRobinBalancerConfig
    | WeightedBalancerConfig
    | LeastOutstandingBalancerConfig
    | PowerOfTwoBalancerConfig,
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
    endpoints: list[EndpointConfig] = Field(min_length=1)
    balancer: BalancerConfig = Field(default_factory=lambda: RoundRobinBalancerConfig(type="round_robin"))
    health: HealthConfig = Field(default_factory=HealthConfig)
    outlier: OutlierConfig = Field(default_factory=OutlierConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
