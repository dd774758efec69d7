"""How much of a test-split difference is noise: paired bootstrap over test prompts.

For a router swept over λ, each λ fixes one model per prompt, so a resample of prompts only
re-averages per-prompt (cost, quality) — no refitting, no re-prediction. Both routers are
resampled with the same prompts (paired), which is what a comparison "A beats B" needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from switchyard.learn.datasets import RoutingDataset
from switchyard.learn.evaluate import DEFAULT_LAMBDAS
from switchyard.learn.metrics import aiq, apgr, nondecreasing_hull, strong_share_curve
from switchyard.learn.routers.base import FloatArray, IndexArray, choose_by_lambda

Metric = Callable[[FloatArray], float]


def per_prompt_points(
    pred_quality: FloatArray,
    pred_cost: FloatArray,
    test: RoutingDataset,
    reference_cost: float,
    lambdas: Sequence[float] | FloatArray = DEFAULT_LAMBDAS,
) -> tuple[FloatArray, FloatArray]:
    """Realised cost and quality [n_lambdas, n_prompts] of each λ's choice per prompt."""
    quality = np.nan_to_num(test.quality, nan=0.0)
    cost = np.nan_to_num(test.cost, nan=0.0)
    rows = np.arange(len(test))
    costs, qualities = [], []
    for lam in lambdas:
        choice = choose_by_lambda(
            pred_quality, pred_cost, float(lam), reference_cost, test.observed
        )
        costs.append(cost[rows, choice])
        qualities.append(quality[rows, choice])
    return np.array(costs), np.array(qualities)


def aiq_of_sample(
    costs: FloatArray, qualities: FloatArray, sample: IndexArray, cost_low: float, cost_high: float
) -> float:
    """AIQ of the λ-swept curve on the prompts `sample` (indices, repeats allowed)."""
    hull = nondecreasing_hull(costs[:, sample].mean(axis=1), qualities[:, sample].mean(axis=1))
    return aiq(hull, cost_low, cost_high)


def paired_aiq_difference(
    first: tuple[FloatArray, FloatArray],
    second: tuple[FloatArray, FloatArray],
    single_costs: FloatArray,
    resamples: int = 300,
    seed: int = 0,
) -> FloatArray:
    """Bootstrap distribution of AIQ(first) − AIQ(second). The AIQ cost range is recomputed
    per resample from the single models' per-prompt costs `single_costs` [n_prompts, m]."""
    rng = np.random.default_rng(seed)
    n = first[0].shape[1]
    out = np.empty(resamples)
    for r in range(resamples):
        sample = np.asarray(rng.integers(0, n, n), dtype=np.int64)
        means = single_costs[sample].mean(axis=0)
        low, high = float(np.min(means)), float(np.max(means))
        out[r] = aiq_of_sample(first[0], first[1], sample, low, high) - aiq_of_sample(
            second[0], second[1], sample, low, high
        )
    return out


def apgr_samples(
    scores: FloatArray,
    weak_quality: FloatArray,
    strong_quality: FloatArray,
    resamples: int = 300,
    seed: int = 0,
) -> FloatArray:
    """Bootstrap distribution of a two-model router's APGR over resampled test prompts."""
    rng = np.random.default_rng(seed)
    n = scores.shape[0]
    out = []
    for r in range(resamples):
        sample = rng.integers(0, n, n)
        if float(np.mean(strong_quality[sample])) == float(np.mean(weak_quality[sample])):
            continue
        curve = strong_share_curve(
            scores[sample], weak_quality[sample], strong_quality[sample], seed=seed + r
        )
        out.append(apgr(curve))
    return np.array(out)


def cost_ratio_samples(
    points: tuple[FloatArray, FloatArray],
    best_quality: FloatArray,
    best_cost: FloatArray,
    resamples: int = 300,
    seed: int = 0,
) -> FloatArray:
    """Bootstrap distribution of the cost (÷ the best single model's) at which a λ-swept router
    reaches the best single model's quality; `best_*` are that model's per-prompt outcomes.
    A resample where the router never reaches it counts as +inf."""
    rng = np.random.default_rng(seed)
    costs, qualities = points
    n = costs.shape[1]
    out = np.empty(resamples)
    for r in range(resamples):
        sample = np.asarray(rng.integers(0, n, n), dtype=np.int64)
        hull = nondecreasing_hull(costs[:, sample].mean(axis=1), qualities[:, sample].mean(axis=1))
        reference = float(np.mean(best_cost[sample]))
        out[r] = hull.cost_to_reach(float(np.mean(best_quality[sample]))) / reference
    return out
