"""Capacity search: the largest arrival-rate scale at which P90 TTFT stays within the SLO."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from switchyard.sim.engine import PoolSpec, simulate
from switchyard.sim.metrics import Summary, summarize
from switchyard.sim.workloads import Workload


@dataclass(frozen=True)
class CapacityResult:
    scale: float
    summary_at_scale: Summary
    probes: tuple[tuple[float, float], ...]  # (scale, p90 ttft)


def p90_at(workload: Workload, pools: Sequence[PoolSpec], scale: float,
           ttft_slo_s: float) -> Summary:
    return summarize(simulate(workload.scaled(scale), pools), ttft_slo_s)


def search_capacity(workload: Workload, pools_factory: Callable[[], Sequence[PoolSpec]],
                    ttft_slo_s: float, start: float = 1.0, rel_tol: float = 0.01,
                    max_probes: int = 16) -> CapacityResult:
    """Bracket by x1.25 steps from `start`, then bisect (geometrically) to `rel_tol`.

    Assumes P90 TTFT grows with the arrival rate (true up to simulation noise)."""
    probes: list[tuple[float, float]] = []
    feasible: tuple[float, Summary] | None = None

    def probe(scale: float) -> bool:
        nonlocal feasible
        summary = p90_at(workload, pools_factory(), scale, ttft_slo_s)
        probes.append((scale, summary.ttft_p90_s))
        ok = summary.ttft_p90_s <= ttft_slo_s
        if ok and (feasible is None or scale > feasible[0]):
            feasible = (scale, summary)
        return ok

    low, high = 0.0, 0.0
    scale = start
    if probe(scale):
        low = scale
        while len(probes) < max_probes:
            scale *= 1.25
            if not probe(scale):
                high = scale
                break
            low = scale
    else:
        high = scale
        while len(probes) < max_probes:
            scale /= 1.25
            if probe(scale):
                low = scale
                break
            high = scale
    while low > 0 and high > 0 and high / low > 1 + rel_tol and len(probes) < max_probes:
        middle = (low * high) ** 0.5
        if probe(middle):
            low = middle
        else:
            high = middle
    if feasible is None:
        return CapacityResult(0.0, summarize_empty(), tuple(probes))
    return CapacityResult(feasible[0], feasible[1], tuple(probes))


def summarize_empty() -> Summary:
    nan = float("nan")
    return Summary(0, 0, nan, nan, nan, nan, nan, nan, nan, nan, nan, 0.0, 0.0, 0.0, 0.0, 1.0,
                   0.0, 0, 0.0, 0.0, 0.0)
