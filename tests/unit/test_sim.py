"""Simulator invariants: completion, Little's law, cache accounting, profiles, decode segments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from switchyard.config.pools import DualMapBalancerConfig, PrefixAffinityBalancerConfig
from switchyard.pools.balancers import LeastOutstandingBalancer, RoundRobinBalancer
from switchyard.pools.dualmap import DualMapBalancer
from switchyard.pools.prefix_affinity import PrefixAffinityBalancer
from switchyard.sim.capacity import search_capacity
from switchyard.sim.endpoint_model import EndpointModel, RequestTable
from switchyard.sim.engine import PoolSpec, simulate
from switchyard.sim.metrics import summarize
from switchyard.sim.oracle import OracleBalancer
from switchyard.sim.policies import balancer_factory
from switchyard.sim.profiles import Profile, load_profile
from switchyard.sim.workloads import (
    Workload,
    infinite_cache_hit_rate,
    synthetic_sessions,
    synthetic_unique,
)
from switchyard.types import EndpointState, RequestView

REFERENCE = load_profile("reference")


def pool(balancer_factory, replicas: int = 4, profile: Profile = REFERENCE) -> list[PoolSpec]:  # type: ignore[no-untyped-def]
    return [PoolSpec("p", replicas, profile, balancer_factory)]


def dualmap_factory() -> DualMapBalancer:
    return DualMapBalancer(DualMapBalancerConfig(type="dualmap"))


@pytest.mark.parametrize("factory", [RoundRobinBalancer, LeastOutstandingBalancer,
                                     dualmap_factory])
def test_every_request_completes_exactly_once(factory) -> None:  # type: ignore[no-untyped-def]
    workload = synthetic_sessions(sessions=60, turns=4, rate_per_s=6.0, seed=1)
    result = simulate(workload, pool(factory))
    assert result.table.completions == [1] * len(workload)
    first = np.asarray(result.table.first_token)
    finish = np.asarray(result.table.finish)
    assert np.all(first >= workload.arrival_s) and np.all(finish >= first)
    assert all(r.in_flight == 0 and not r.waiting and not r.decoding for r in result.replicas)
    assert all(r.free_blocks + len(r.evictable) == r.profile.kv_blocks for r in result.replicas)


def test_littles_law_on_poisson_arrivals() -> None:
    # M/G/c-like: Poisson arrivals, identical requests, 4 replicas at moderate load.
    workload = synthetic_unique(count=4000, rate_per_s=3.0, input_tokens=2048,
                                output_tokens=100, seed=3)
    result = simulate(workload, pool(LeastOutstandingBalancer))
    table = result.table
    sojourn = np.asarray(table.finish) - np.asarray(table.arrival)
    arrival_rate = len(workload) / workload.duration_s
    little_l = arrival_rate * float(sojourn.mean())
    seen_by_arrivals = result.in_system_seen_by_arrivals / len(workload)  # PASTA
    assert little_l > 1.0
    assert seen_by_arrivals == pytest.approx(little_l, rel=0.1)


def test_unloaded_latency_matches_the_profile_formula() -> None:
    workload = synthetic_unique(count=1, rate_per_s=1.0, input_tokens=20_000, output_tokens=11)
    result = simulate(workload, pool(RoundRobinBalancer, replicas=1))
    ttft = result.table.first_token[0]
    assert ttft == pytest.approx(20_000 / REFERENCE.prefill_tokens_per_s)
    # 10 decode steps at batch 1, context 20,001..20,010 tokens
    steps = sum(10.0 + 0.1 + 0.04 * (20_001 + i) / 1000 for i in range(10)) / 1000
    assert result.table.finish[0] - ttft == pytest.approx(steps)


def test_decode_segments_cut_short_by_arrivals_keep_timing_consistent() -> None:
    two = synthetic_unique(count=2, rate_per_s=0.5, input_tokens=600, output_tokens=2000, seed=2)
    result = simulate(two, pool(RoundRobinBalancer, replicas=1))
    assert result.table.completions == [1, 1]
    tpot = (result.table.finish[0] - result.table.first_token[0]) / 1999
    assert 0.010 < tpot < 0.012


def test_hit_rate_is_zero_with_affinity_off_and_unique_prompts() -> None:
    workload = synthetic_unique(count=500, rate_per_s=4.0, input_tokens=3000, output_tokens=50)
    summary = summarize(simulate(workload, pool(RoundRobinBalancer)), ttft_slo_s=5.0)
    assert summary.prefix_hit_rate == 0.0
    assert summary.completed == 500


def test_prefix_affinity_raises_hit_rate_on_sessions() -> None:
    workload = synthetic_sessions(sessions=80, turns=5, rate_per_s=4.0, seed=4)
    blind = summarize(simulate(workload, pool(RoundRobinBalancer, replicas=8)), 5.0)
    config = PrefixAffinityBalancerConfig(type="prefix_affinity")
    aware = summarize(simulate(workload, pool(lambda: PrefixAffinityBalancer(config),
                                              replicas=8)), 5.0)
    assert aware.prefix_hit_rate > blind.prefix_hit_rate + 0.2


def test_capacity_search_brackets_the_slo() -> None:
    workload = synthetic_unique(count=600, rate_per_s=2.0, input_tokens=4000, output_tokens=50)
    result = search_capacity(workload, lambda: pool(LeastOutstandingBalancer, replicas=2),
                             ttft_slo_s=2.0, rel_tol=0.05)
    assert result.scale > 0 and result.summary_at_scale.ttft_p90_s <= 2.0
    above = [p90 for scale, p90 in result.probes if scale > result.scale * 1.05]
    assert above and min(above) > 2.0


def test_profile_without_a_source_is_rejected() -> None:
    data = REFERENCE.model_dump()
    del data["sources"]["busy_watts"]
    with pytest.raises(ValueError, match="busy_watts"):
        Profile.model_validate(data)


def test_scaled_kv_profile_keeps_sources() -> None:
    doubled = REFERENCE.scaled_kv(2.0)
    assert doubled.kv_blocks == 2 * REFERENCE.kv_blocks or math.isclose(
        doubled.kv_blocks, 2 * REFERENCE.kv_blocks, abs_tol=1)
    assert "2 x" in doubled.sources["kv_capacity_tokens"]


def test_hit_potential_bounds_and_oracle_headroom_on_sessions() -> None:
    workload = synthetic_sessions(sessions=80, turns=5, rate_per_s=4.0, seed=4)
    blind = summarize(simulate(workload, pool(RoundRobinBalancer, replicas=8)), 5.0)
    oracle_pools = pool(balancer_factory("oracle_greedy", REFERENCE, 5.0), replicas=8)
    oracle_run = simulate(workload, oracle_pools)
    oracle = summarize(oracle_run, 5.0)
    assert oracle_run.table.completions == [1] * len(workload)
    # round robin wastes most of what is cached somewhere; the oracle collects it
    assert blind.prefix_hit_potential > blind.prefix_hit_rate + 0.2
    assert oracle.prefix_hit_rate > blind.prefix_hit_rate + 0.2
    assert oracle.prefix_hit_rate <= infinite_cache_hit_rate(workload) + 1e-9


def test_window_oracle_trades_queue_time_for_cache_inside_its_window() -> None:
    shared = tuple(range(1, 9))  # 8 blocks = 4,096 tokens
    table = RequestTable(arrival=[0.0, 0.0, 1.0], inputs=[4096, 10_000, 4608],
                         outputs=[1, 1, 1],
                         blocks=[shared, tuple(range(20, 40)), (*shared, 99)])
    warm, cold = (EndpointModel(i, name, REFERENCE, table) for i, name in enumerate("ab"))
    warm.enqueue(0)
    assert warm.plan(0.0)
    warm.on_step_end(warm.step_end, [])
    assert warm.cached_prefix_tokens(2) == 4096  # request 0 finished, its blocks stay cached
    warm.enqueue(1)  # 10,000 queued tokens: ~1 s of prefill ahead on the warm replica
    states = [EndpointState(name=m.name, pool="p", in_flight=m.in_flight) for m in (warm, cold)]
    view = RequestView(request_id="2", model="sim", prefix_blocks=table.blocks[2],
                       prompt_tokens=4608)
    picks = {}
    for window in (0.0, 2.0, 0.5):
        oracle = OracleBalancer(REFERENCE.prefill_tokens_per_s, cache_window_s=window)
        oracle.attach_replicas([warm, cold])
        picks[window] = oracle.pick(states, view).name
    # greedy: cold 0.46 s beats warm 1.05 s; within 2 s the cached replica wins; not within 0.5 s
    assert picks == {0.0: "b", 2.0: "a", 0.5: "b"}


def test_hit_potential_is_zero_with_unique_prompts() -> None:
    workload = synthetic_unique(count=200, rate_per_s=4.0, input_tokens=3000, output_tokens=50)
    summary = summarize(simulate(workload, pool(RoundRobinBalancer)), ttft_slo_s=5.0)
    assert summary.prefix_hit_potential == 0.0
    assert infinite_cache_hit_rate(workload) == 0.0


def test_infinite_cache_hit_rate_counts_previously_seen_leading_blocks() -> None:
    # turn 2 repeats 2 of its 3 blocks; the third request shares only block 0
    workload = Workload("t", np.array([0.0, 1.0, 2.0]), np.array([1024, 1536, 1024]),
                        np.array([1, 1, 1]), ((0, 1), (0, 1, 2), (0, 9)), True)
    assert infinite_cache_hit_rate(workload) == pytest.approx((1024 + 512) / 3584)
