"""Table-driven tests of the load-only balancers (pure pick over endpoint snapshots)."""

from __future__ import annotations

from collections import Counter

import pytest

from switchyard.pools.balancers import (
    LeastOutstandingBalancer,
    PowerOfTwoBalancer,
    RoundRobinBalancer,
    WeightedBalancer,
)
from switchyard.types import EndpointState, RequestView

VIEW = RequestView(request_id="r", model="m")


def eps(*loads: int, weights: tuple[float, ...] | None = None) -> list[EndpointState]:
    w = weights or tuple(1.0 for _ in loads)
    return [
        EndpointState(name=f"e{i}", pool="p", in_flight=load, weight=w[i])
        for i, load in enumerate(loads)
    ]


def test_round_robin_cycles_in_order() -> None:
    balancer = RoundRobinBalancer()
    picks = [balancer.pick(eps(0, 0, 0), VIEW).name for _ in range(6)]
    assert picks == ["e0", "e1", "e2", "e0", "e1", "e2"]


@pytest.mark.parametrize(
    ("loads", "weights", "expected"),
    [
        ((3, 1, 2), None, {"e1"}),
        ((4, 4), (1.0, 4.0), {"e1"}),  # 4/4 = 1 < 4/1
        ((2, 2, 5), None, {"e0", "e1"}),  # ties rotate between the least loaded
    ],
)
def test_least_outstanding_picks_lowest_load_per_weight(
    loads: tuple[int, ...], weights: tuple[float, ...] | None, expected: set[str]
) -> None:
    balancer = LeastOutstandingBalancer()
    picks = {balancer.pick(eps(*loads, weights=weights), VIEW).name for _ in range(10)}
    assert picks == expected


def test_least_outstanding_rotates_ties_when_idle() -> None:
    balancer = LeastOutstandingBalancer()
    picks = Counter(balancer.pick(eps(0, 0), VIEW).name for _ in range(10))
    assert picks == {"e0": 5, "e1": 5}


def test_weighted_follows_weights() -> None:
    balancer = WeightedBalancer(seed=7)
    picks = Counter(
        balancer.pick(eps(0, 0, weights=(1.0, 3.0)), VIEW).name for _ in range(4000)
    )
    assert 0.70 < picks["e1"] / 4000 < 0.80


def test_power_of_two_never_picks_the_most_loaded_of_three() -> None:
    balancer = PowerOfTwoBalancer(seed=1)
    picks = Counter(balancer.pick(eps(0, 5, 9), VIEW).name for _ in range(600))
    assert picks["e2"] == 0  # it always loses its comparison
    assert picks["e0"] > picks["e1"] > 0


def test_power_of_two_single_endpoint() -> None:
    assert PowerOfTwoBalancer(seed=1).pick(eps(3), VIEW).name == "e0"
