"""Summaries of a simulation run: latency percentiles, SLO attainment, cache hits, imbalance."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from switchyard.sim.engine import SimResult


@dataclass(frozen=True)
class Summary:
    requests: int
    completed: int
    ttft_p50_s: float
    ttft_p90_s: float
    ttft_p99_s: float
    tpot_p50_ms: float
    tpot_p90_ms: float
    tpot_p99_ms: float
    e2e_p50_s: float
    e2e_p90_s: float
    e2e_p99_s: float
    slo_attainment: float
    goodput_rps: float
    prefix_hit_rate: float
    prefix_hit_potential: float
    load_imbalance: float
    makespan_s: float
    migrations: int
    wall_s: float
    gpu_hours: float
    energy_kwh: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan


def summarize(result: SimResult, ttft_slo_s: float) -> Summary:
    table = result.table
    arrival = np.asarray(table.arrival)
    first = np.asarray(table.first_token)
    finish = np.asarray(table.finish)
    outputs = np.asarray(table.outputs)
    done = ~np.isnan(finish)
    ttft = (first - arrival)[done]
    e2e = (finish - arrival)[done]
    decoding = done & (outputs > 1)
    tpot = ((finish - first)[decoding] / (outputs[decoding] - 1)) * 1000.0
    prompt = sum(r.prompt_tokens for r in result.replicas)
    hits = sum(r.hit_tokens for r in result.replicas)
    work = np.asarray([r.prefilled_tokens for r in result.replicas], dtype=np.float64)
    span = max(float(np.nanmax(finish)) if done.any() else 0.0, 1e-9)
    within = int(np.sum(ttft <= ttft_slo_s))
    return Summary(
        requests=len(arrival), completed=int(done.sum()),
        ttft_p50_s=_pct(ttft, 50), ttft_p90_s=_pct(ttft, 90), ttft_p99_s=_pct(ttft, 99),
        tpot_p50_ms=_pct(tpot, 50), tpot_p90_ms=_pct(tpot, 90), tpot_p99_ms=_pct(tpot, 99),
        e2e_p50_s=_pct(e2e, 50), e2e_p90_s=_pct(e2e, 90), e2e_p99_s=_pct(e2e, 99),
        slo_attainment=within / max(len(arrival), 1),
        goodput_rps=within / span,
        prefix_hit_rate=hits / prompt if prompt else 0.0,
        prefix_hit_potential=(sum(table.potential_cached) / float(np.sum(table.inputs))
                              if len(table.inputs) else 0.0),
        load_imbalance=float(work.max() / work.mean()) if work.mean() > 0 else 1.0,
        makespan_s=span, migrations=result.moves, wall_s=result.wall_s,
        gpu_hours=len(result.replicas) * span / 3600.0,
        energy_kwh=energy_kwh(result, span),
    )


def energy_kwh(result: SimResult, span_s: float) -> float:
    """Per-replica power model: busy watts while stepping, idle watts otherwise."""
    joules = 0.0
    for replica in result.replicas:
        busy = min(replica.busy_s, span_s)
        joules += busy * replica.profile.busy_watts + (span_s - busy) * replica.profile.idle_watts
    return joules / 3.6e6
