"""Offline evaluation: sweep a router's λ on a test split and summarise its cost–quality curve.

All numbers come from true outcomes of the test split: for each operating point, each prompt is
sent to the model the router picks (among the models that have an outcome for that prompt) and
the realised quality and cost are averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from switchyard.learn.datasets import RoutingDataset
from switchyard.learn.metrics import (
    Hull,
    aiq,
    apgr,
    cpt,
    nondecreasing_hull,
    oracle_choice,
    realised,
    strong_share_curve,
)
from switchyard.learn.routers.base import FloatArray, choose_by_lambda

DEFAULT_LAMBDAS = np.concatenate([[0.0], np.geomspace(1e-4, 1e3, 160)])


@dataclass(frozen=True)
class RouterCurve:
    """Operating points of one router (or a single point for a fixed baseline)."""

    name: str
    costs: FloatArray
    qualities: FloatArray
    settings: FloatArray
    kind: str = "router"  # router | baseline | single
    scores: FloatArray | None = None  # two-model datasets: strong-vs-weak routing score

    @property
    def hull(self) -> Hull:
        return nondecreasing_hull(self.costs, self.qualities)


@dataclass(frozen=True)
class Reference:
    """What every router on one test split is compared with."""

    single_costs: dict[str, float]
    single_qualities: dict[str, float]
    best_single: str
    cost_low: float
    cost_high: float
    strong: str | None = None
    weak: str | None = None
    extras: dict[str, float] = field(default_factory=dict)

    @property
    def best_cost(self) -> float:
        return self.single_costs[self.best_single]

    @property
    def best_quality(self) -> float:
        return self.single_qualities[self.best_single]


def reference_for(test: RoutingDataset) -> Reference:
    costs = dict(zip(test.models, test.mean_cost().tolist(), strict=True))
    qualities = dict(zip(test.models, test.mean_quality().tolist(), strict=True))
    best = max(test.models, key=lambda m: (qualities[m], -costs[m]))
    strong = weak = None
    if len(test.models) == 2:
        strong = best
        weak = next(m for m in test.models if m != best)
    return Reference(costs, qualities, best, min(costs.values()), max(costs.values()),
                     strong, weak)


def sweep_lambda(name: str, pred_quality: FloatArray, pred_cost: FloatArray,
                 test: RoutingDataset, reference_cost: float,
                 lambdas: Sequence[float] | FloatArray = DEFAULT_LAMBDAS) -> RouterCurve:
    available = test.observed
    quality = np.nan_to_num(test.quality, nan=0.0)
    cost = np.nan_to_num(test.cost, nan=0.0)
    costs, qualities = [], []
    for lam in lambdas:
        choice = choose_by_lambda(pred_quality, pred_cost, float(lam), reference_cost, available)
        c, q = realised(choice, quality, cost)
        costs.append(c)
        qualities.append(q)
    scores = None
    if len(test.models) == 2:
        ref = reference_for(test)
        strong, weak = test.models.index(ref.strong or ""), test.models.index(ref.weak or "")
        scores = pred_quality[:, strong] - pred_quality[:, weak]
    return RouterCurve(name, np.array(costs), np.array(qualities), np.asarray(lambdas,
                       dtype=np.float64), "router", scores)


def single_model_curves(test: RoutingDataset) -> list[RouterCurve]:
    ref = reference_for(test)
    return [
        RouterCurve(m, np.array([ref.single_costs[m]]), np.array([ref.single_qualities[m]]),
                    np.array([0.0]), "single")
        for m in test.models
    ]


def baseline_curves(train: RoutingDataset, test: RoutingDataset,
                    reference_cost: float) -> list[RouterCurve]:
    """random, cheapest, best_single (picked on train), oracle (λ-swept), zero router."""
    observed = test.observed
    q_rows = np.where(observed, test.quality, np.nan)
    c_rows = np.where(observed, test.cost, np.nan)
    random_point = (float(np.mean(np.nanmean(c_rows, axis=1))),
                    float(np.mean(np.nanmean(q_rows, axis=1))))
    train_cost, train_quality = train.mean_cost(), train.mean_quality()
    cheapest = int(np.argmin(np.nan_to_num(train_cost, nan=np.inf)))
    best = int(np.argmax(np.nan_to_num(train_quality, nan=-np.inf)))
    ref = reference_for(test)
    curves = [
        RouterCurve("random", np.array([random_point[0]]), np.array([random_point[1]]),
                    np.array([0.0]), "baseline", np.zeros(len(test))),
        _fixed("cheapest", test.models[cheapest], ref),
        _fixed("best_single", test.models[best], ref),
    ]
    oracle = sweep_lambda("oracle", np.nan_to_num(test.quality, nan=0.0),
                          np.nan_to_num(test.cost, nan=0.0), test, reference_cost)
    q = np.nan_to_num(test.quality, nan=0.0)
    c = np.nan_to_num(test.cost, nan=0.0)
    exact_cost, exact_quality = realised(oracle_choice(test.quality, test.cost), q, c)
    curves.append(RouterCurve(
        "oracle", np.append(oracle.costs, exact_cost), np.append(oracle.qualities, exact_quality),
        np.append(oracle.settings, 0.0), "baseline", oracle.scores))
    zero = nondecreasing_hull(list(ref.single_costs.values()), list(ref.single_qualities.values()))
    curves.append(RouterCurve("zero_router", zero.costs, zero.qualities,
                              np.zeros(zero.costs.shape[0]), "baseline"))
    return curves


def _fixed(name: str, model: str, ref: Reference) -> RouterCurve:
    return RouterCurve(name, np.array([ref.single_costs[model]]),
                       np.array([ref.single_qualities[model]]), np.array([0.0]), "baseline")


def summarise(curve: RouterCurve, ref: Reference, test: RoutingDataset | None = None,
              seed: int = 0) -> dict[str, float | None]:
    """Metrics of one curve: AIQ, quality at 25/50% of best cost, cost to match best, APGR, CPT."""
    hull = curve.hull
    match_cost = hull.cost_to_reach(ref.best_quality)
    out: dict[str, float | None] = {
        "aiq": aiq(hull, ref.cost_low, ref.cost_high),
        "max_quality": float(np.max(curve.qualities)),
        "quality_at_25pct_best_cost": _finite(hull.value(0.25 * ref.best_cost)),
        "quality_at_50pct_best_cost": _finite(hull.value(0.50 * ref.best_cost)),
        "quality_at_best_cost": _finite(hull.value(ref.best_cost)),
        "cost_to_match_best": _finite(match_cost),
        "cost_ratio_to_match_best": _finite(match_cost / ref.best_cost),
    }
    if test is not None and ref.strong is not None and ref.weak is not None and (
            curve.scores is not None):
        strong, weak = test.models.index(ref.strong), test.models.index(ref.weak)
        share = strong_share_curve(curve.scores, np.nan_to_num(test.quality[:, weak]),
                                   np.nan_to_num(test.quality[:, strong]), seed=seed)
        out["apgr"] = apgr(share)
        out["cpt50"] = _finite(cpt(share, 0.5))
        out["cpt80"] = _finite(cpt(share, 0.8))
    return out


def _finite(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)
