"""Load balancers that need no request content: round robin, weighted, least outstanding, P2C."""

from __future__ import annotations

import random
from collections.abc import Sequence

from switchyard.config.pools import (
    LeastOutstandingBalancerConfig,
    PowerOfTwoBalancerConfig,
    RoundRobinBalancerConfig,
    WeightedBalancerConfig,
)
from switchyard.pools.balancer import Balancer, register_balancer
from switchyard.types import EndpointState, RequestView


def load_of(endpoint: EndpointState) -> float:
    """In-flight requests relative to weight; the shared notion of 'busy'."""
    return endpoint.in_flight / endpoint.weight


class RoundRobinBalancer:
    name = "round_robin"

    def __init__(self) -> None:
        self._counter = 0

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        chosen = endpoints[self._counter % len(endpoints)]
        self._counter += 1
        return chosen


class WeightedBalancer:
    """Random choice proportional to weight (smooth over many requests, no shared counter)."""

    name = "weighted"

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        total = sum(e.weight for e in endpoints)
        point = self._random.uniform(0.0, total)
        for endpoint in endpoints:
            point -= endpoint.weight
            if point <= 0.0:
                return endpoint
        return endpoints[-1]


class LeastOutstandingBalancer:
    """Fewest in-flight requests per unit of weight; ties rotate so idle pools spread load."""

    name = "least_outstanding"

    def __init__(self) -> None:
        self._tiebreak = 0

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        best = min(load_of(e) for e in endpoints)
        tied = [e for e in endpoints if load_of(e) == best]
        self._tiebreak += 1
        return tied[self._tiebreak % len(tied)]


class PowerOfTwoBalancer:
    """Sample two endpoints at random, keep the less loaded (power of two choices)."""

    name = "power_of_two"

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)

    def pick(self, endpoints: Sequence[EndpointState], view: RequestView) -> EndpointState:
        if len(endpoints) == 1:
            return endpoints[0]
        first, second = self._random.sample(range(len(endpoints)), 2)
        a, b = endpoints[first], endpoints[second]
        return a if load_of(a) <= load_of(b) else b


@register_balancer("round_robin", RoundRobinBalancerConfig)
def _round_robin(config: RoundRobinBalancerConfig) -> Balancer:
    return RoundRobinBalancer()


@register_balancer("weighted", WeightedBalancerConfig)
def _weighted(config: WeightedBalancerConfig) -> Balancer:
    return WeightedBalancer(config.seed)


@register_balancer("least_outstanding", LeastOutstandingBalancerConfig)
def _least_outstanding(config: LeastOutstandingBalancerConfig) -> Balancer:
    return LeastOutstandingBalancer()


@register_balancer("power_of_two", PowerOfTwoBalancerConfig)
def _power_of_two(config: PowerOfTwoBalancerConfig) -> Balancer:
    return PowerOfTwoBalancer(config.seed)
