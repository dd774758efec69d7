"""Training learned routers, with hyper-parameters tuned by K-fold cross-validation on train only.

The CV objective is routing quality on the held-out fold: AIQ of the λ-swept curve (N models) or
APGR (two models), the same metrics the evaluator reports on the test split.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from switchyard.learn.artifacts import TrainedRouter
from switchyard.learn.datasets import RoutingDataset, kfold_indices
from switchyard.learn.evaluate import reference_for, summarise, sweep_lambda
from switchyard.learn.routers import EnsemblePredictor, make_predictor
from switchyard.learn.routers.base import (
    FloatArray,
    IndexArray,
    LinearCostModel,
    QualityPredictor,
)

# Small grids: the machine is shared; every value here was cheap to try on llmrouter9.
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "knn": {"k": [40, 80, 160], "temperature": [0.05, 1.0], "prior_weight": [0.0, 2.0]},
    "mlp": {"l2": [1e-3, 1e-2], "epochs": [30], "batch_size": [512]},
    "mf": {"l2": [1e-3, 1e-2], "epochs": [30], "batch_size": [512]},
    "irt": {"l2": [1e-3, 1e-2], "epochs": [30], "batch_size": [512]},
    "task": {"l2": [1e-4, 1e-3], "shrinkage": [5.0, 20.0]},
    "constant": {},
}
ENSEMBLE_MEMBERS = ("task", "knn", "mf", "mlp", "irt")
BAGGED = ("mf", "mlp", "irt")  # seed-bagged inside an ensemble (variance reduction)
DEFAULT_BAGS = 3

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TuningResult:
    kind: str
    params: dict[str, Any]
    cv_score: float
    table: list[tuple[dict[str, Any], float]]
    seconds: float
    oof: OutOfFold | None = field(default=None, repr=False, compare=False)


def single_threaded_blas() -> AbstractContextManager[object]:
    """Small matrices train faster on one BLAS thread, and the machine is shared anyway."""
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return nullcontext()
    return cast(AbstractContextManager[object], threadpool_limits(limits=1))


def prompt_chars(dataset: RoutingDataset) -> FloatArray:
    return np.array([len(p) for p in dataset.prompts], dtype=np.float64)


def reference_cost_of(dataset: RoutingDataset) -> float:
    """Cost unit λ is expressed in: the mean cost of the most expensive model (train)."""
    costs = dataset.mean_cost()
    value = float(np.nanmax(costs)) if np.any(~np.isnan(costs)) else 1.0
    return value if value > 0 else 1.0


def build_predictor(kind: str, params: Mapping[str, Any]) -> QualityPredictor:
    if kind == "ensemble":
        kinds = list(params.get("members", ENSEMBLE_MEMBERS))
        bags = int(params.get("bags", DEFAULT_BAGS))
        members, weights = [], []
        for member in kinds:  # neural members: `bags` seeds each, sharing the member's weight
            copies = bags if member in BAGGED else 1
            members += [make_predictor(member, **dict(params.get(member, {})))
                        for _ in range(copies)]
            weights += [1.0 / copies] * copies
        return EnsemblePredictor(members, weights)
    return make_predictor(kind, **dict(params))


def fit_router(kind: str, dataset: RoutingDataset, features: FloatArray,
               params: Mapping[str, Any], seed: int = 0,
               embedder_id: str = "", feature_set: str = "full") -> TrainedRouter:
    """Fit one router with fixed hyper-parameters on the whole of `dataset`."""
    start = time.perf_counter()
    predictor = build_predictor(kind, params)
    with single_threaded_blas():
        predictor.fit(features, dataset.quality, seed=seed, groups=dataset.categories)
    cost_model = LinearCostModel.fit(prompt_chars(dataset), dataset.cost)
    meta = {"params": dict(params), "seed": seed, "train_rows": len(dataset),
            "train_dataset": dataset.name, "fit_seconds": time.perf_counter() - start}
    return TrainedRouter(kind, dataset.models, predictor, cost_model,
                         reference_cost_of(dataset), embedder_id, feature_set, meta)


def score_predictions(name: str, pred_quality: FloatArray, pred_cost: FloatArray,
                      valid: RoutingDataset, reference_cost: float) -> float:
    """APGR for two-model data, else AIQ, of λ-swept predictions on `valid`."""
    curve = sweep_lambda(name, pred_quality, pred_cost, valid, reference_cost)
    metrics = summarise(curve, reference_for(valid), valid)
    value = metrics.get("apgr") if len(valid.models) == 2 else metrics["aiq"]
    return float(value if value is not None else float("nan"))


def routing_score(router: TrainedRouter, valid: RoutingDataset, features: FloatArray) -> float:
    """APGR for two-model data, else AIQ, of the λ-swept router on `valid`."""
    pred_quality, pred_cost = router.predict(features, prompt_chars(valid))
    return score_predictions(router.kind, pred_quality, pred_cost, valid, router.reference_cost)


def grid(space: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(space)
    return [dict(zip(keys, values, strict=True))
            for values in itertools.product(*(space[k] for k in keys))]


Splits = list[tuple[IndexArray, IndexArray]]


def cv_splits(n: int, folds: int, seed: int, repeats: int = 1) -> Splits:
    """`repeats` independently shuffled K-fold partitions (repeated CV: less noisy selection)."""
    return [pair for r in range(repeats) for pair in kfold_indices(n, folds, seed + 1000 * r)]


@dataclass(frozen=True)
class OutOfFold:
    """Held-out predictions of one configuration: per split, quality and cost of its valid rows."""

    quality: list[FloatArray]
    cost: list[FloatArray]
    reference_costs: list[float]


def cross_validate(kind: str, dataset: RoutingDataset, features: FloatArray,
                   params: Mapping[str, Any], splits: Splits,
                   seed: int) -> tuple[float, OutOfFold]:
    """Mean held-out routing score over `splits`, and the held-out predictions."""
    scores: list[float] = []
    oof = OutOfFold([], [], [])
    for train_idx, valid_idx in splits:
        router = fit_router(kind, dataset.subset(train_idx), features[train_idx], params, seed)
        valid = dataset.subset(valid_idx)
        quality, cost = router.predict(features[valid_idx], prompt_chars(valid))
        oof.quality.append(quality)
        oof.cost.append(cost)
        oof.reference_costs.append(router.reference_cost)
        scores.append(score_predictions(kind, quality, cost, valid, router.reference_cost))
    return float(np.mean(scores)), oof


def tune(kind: str, dataset: RoutingDataset, features: FloatArray, *, folds: int = 3,
         seed: int = 0, space: Mapping[str, Sequence[Any]] | None = None,
         progress: Progress | None = None, repeats: int = 1) -> TuningResult:
    """Pick hyper-parameters of `kind` by (repeated) K-fold CV on `dataset` (train only)."""
    start = time.perf_counter()
    candidates = grid(space if space is not None else DEFAULT_GRIDS.get(kind, {}))
    splits = cv_splits(len(dataset), folds, seed, repeats)
    table: list[tuple[dict[str, Any], float]] = []
    best: OutOfFold | None = None
    for params in candidates:
        score, oof = cross_validate(kind, dataset, features, params, splits, seed)
        if not table or score > max(row[1] for row in table):
            best = oof
        table.append((params, score))
        if progress is not None:
            progress(f"{kind} {params}: cv={score:.4f}")
    best_params, best_score = max(table, key=lambda row: row[1])
    return TuningResult(kind, best_params, best_score, table, time.perf_counter() - start,
                        best)


def ensemble_options(kinds: Sequence[str]) -> list[list[str]]:
    """Every equal-weight combination of at least two of `kinds`."""
    return [list(c) for size in range(2, len(kinds) + 1)
            for c in itertools.combinations(kinds, size)]


def bags_for(members: Sequence[str]) -> int:
    """Seeds per gradient-trained member: at most DEFAULT_BAGS gradient fits per ensemble, so an
    ensemble trains in about the time of its slowest members (the 60 s training budget)."""
    return max(1, DEFAULT_BAGS // max(1, sum(m in BAGGED for m in members)))


def tune_ensemble(tuned: Mapping[str, TuningResult], dataset: RoutingDataset,
                  features: FloatArray, *, folds: int = 3, seed: int = 0,
                  progress: Progress | None = None, repeats: int = 1) -> TuningResult:
    """Choose ensemble membership among the tuned members by the same CV.

    Every member's held-out predictions were kept while tuning it (same splits), so each
    combination is scored on the averaged held-out predictions without refitting anything.
    """
    start = time.perf_counter()
    members = [k for k in ENSEMBLE_MEMBERS if k in tuned and tuned[k].oof is not None]
    splits = cv_splits(len(dataset), folds, seed, repeats)
    table: list[tuple[dict[str, Any], float]] = []
    for option in ensemble_options(members):
        oofs = [cast(OutOfFold, tuned[k].oof) for k in option]
        scores = []
        for s, (_, valid_idx) in enumerate(splits):
            quality = np.mean([o.quality[s] for o in oofs], axis=0)
            scores.append(score_predictions("ensemble", quality, oofs[0].cost[s],
                                            dataset.subset(valid_idx),
                                            oofs[0].reference_costs[s]))
        params = {"members": option, "bags": bags_for(option),
                  **{k: tuned[k].params for k in option}}
        table.append((params, float(np.mean(scores))))
        if progress is not None:
            progress(f"ensemble {option}: cv={table[-1][1]:.4f}")
    best_params, best_score = max(table, key=lambda row: row[1])
    return TuningResult("ensemble", best_params, best_score, table, time.perf_counter() - start)
