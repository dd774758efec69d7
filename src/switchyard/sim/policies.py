"""Balancer factories for simulation runs, built through the same registry as the gateway.

Operator-known facts are passed to the balancers the way a deployment would set them in YAML:
dualmap's TTFT estimate uses the replica's prefill rate, block size and the run's SLO. Everything
else is the config default (prefix indexes keep their default 4,096 blocks per endpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from switchyard.pools import balancers as _plain_balancers  # noqa: F401  (registrations)
from switchyard.pools import kv_balancers as _kv_balancers  # noqa: F401  (registrations)
from switchyard.pools.balancer import BALANCERS, Balancer, build_balancer
from switchyard.sim.oracle import OracleBalancer
from switchyard.sim.profiles import Profile


def balancer_options(name: str, profile: Profile, ttft_slo_s: float) -> dict[str, Any]:
    if name == "dualmap":
        return {"prefill_tokens_per_s": profile.prefill_tokens_per_s,
                "ttft_slo_s": ttft_slo_s, "block_tokens": profile.block_tokens}
    if name in ("power_of_two", "weighted"):
        return {"seed": 0}
    return {}


# Named configurations of a registered type, for comparisons (name -> (type, options)).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # SGLang's published defaults: follow the cache from a 50% match, shortest queue by requests
    "prefix_affinity_sglang": ("prefix_affinity",
                               {"cache_threshold": 0.5, "queue_signal": "requests"}),
}


# Simulator-only yardsticks (not registered for the gateway): name -> factory(profile).
YARDSTICKS: dict[str, Callable[[Profile], Callable[[], Balancer]]] = {
    "oracle_greedy": lambda profile: lambda: OracleBalancer(profile.prefill_tokens_per_s),
    # most cached among replicas within 2 s of the lowest estimate (1/2/3/5 s swept on Mooncake)
    "oracle_window": lambda profile: lambda: OracleBalancer(profile.prefill_tokens_per_s,
                                                            cache_window_s=2.0),
}


def balancer_factory(name: str, profile: Profile, ttft_slo_s: float) -> Callable[[], Balancer]:
    if name in YARDSTICKS:
        return YARDSTICKS[name](profile)
    type_name, options = VARIANTS.get(name, (name, {}))
    if type_name not in BALANCERS:
        known = ", ".join(sorted([*BALANCERS, *VARIANTS, *YARDSTICKS]))
        raise ValueError(f"unknown balancer {name!r}; known: {known}")
    config_model, _ = BALANCERS[type_name]
    config = config_model.model_validate(
        {"type": type_name, **balancer_options(type_name, profile, ttft_slo_s), **options})
    return lambda: build_balancer(config)
