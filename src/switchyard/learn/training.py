"""Training learned routers, with hyper-parameters tuned by K-fold cross-validation on train only.

The CV objective is routing quality on the held-out fold: AIQ of the λ-swept curve (N models) or
APGR (two models), the same metrics the evaluator reports on the test split.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from switchyard.learn.artifacts import TrainedRouter
from switchyard.learn.datasets import RoutingDataset, kfold_indices
from switchyard.learn.evaluate import reference_for, summarise, sweep_lambda
from switchyard.learn.routers import EnsemblePredictor, make_predictor
from switchyard.learn.routers.base import FloatArray, LinearCostModel, QualityPredictor

# Small grids: the machine is shared; every value here was cheap to try on llmrouter9.
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "knn": {"k": [20, 40, 80], "temperature": [0.05, 1.0], "prior_weight": [0.0, 2.0]},
    "mlp": {"l2": [1e-3, 1e-2], "epochs": [30], "batch_size": [512]},
    "mf": {"l2": [1e-3, 1e-2], "epochs": [30], "batch_size": [512]},
    "irt": {"l2": [1e-3, 1e-2], "epochs": [30], "batch_size": [512]},
    "task": {"l2": [1e-4, 1e-3], "shrinkage": [5.0, 20.0]},
    "constant": {},
}
ENSEMBLE_MEMBERS = ("task", "knn", "mf", "mlp", "irt")
BAGGED = ("mf", "mlp", "irt")  # seed-bagged inside an ensemble (variance reduction)
DEFAULT_BAGS = 3
ENSEMBLE_OPTIONS = (("task", "knn"), ("task", "knn", "mf", "mlp"), ("knn", "mf", "mlp"),
                    ("mf", "mlp", "irt"))

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TuningResult:
    kind: str
    params: dict[str, Any]
    cv_score: float
    table: list[tuple[dict[str, Any], float]]
    seconds: float


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


def routing_score(router: TrainedRouter, valid: RoutingDataset, features: FloatArray) -> float:
    """APGR for two-model data, else AIQ, of the λ-swept router on `valid`."""
    pred_quality, pred_cost = router.predict(features, prompt_chars(valid))
    curve = sweep_lambda(router.kind, pred_quality, pred_cost, valid, router.reference_cost)
    metrics = summarise(curve, reference_for(valid), valid)
    value = metrics.get("apgr") if len(valid.models) == 2 else metrics["aiq"]
    return float(value if value is not None else float("nan"))


def grid(space: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(space)
    return [dict(zip(keys, values, strict=True))
            for values in itertools.product(*(space[k] for k in keys))]


def tune(kind: str, dataset: RoutingDataset, features: FloatArray, *, folds: int = 3,
         seed: int = 0, space: Mapping[str, Sequence[Any]] | None = None,
         progress: Progress | None = None) -> TuningResult:
    """Pick hyper-parameters of `kind` by K-fold CV on `dataset` (train only)."""
    start = time.perf_counter()
    candidates = grid(space if space is not None else DEFAULT_GRIDS.get(kind, {}))
    splits = kfold_indices(len(dataset), folds, seed)
    table: list[tuple[dict[str, Any], float]] = []
    for params in candidates:
        scores = []
        for train_idx, valid_idx in splits:
            fold_train = dataset.subset(train_idx)
            router = fit_router(kind, fold_train, features[train_idx], params, seed)
            scores.append(routing_score(router, dataset.subset(valid_idx), features[valid_idx]))
        table.append((params, float(np.mean(scores))))
        if progress is not None:
            progress(f"{kind} {params}: cv={table[-1][1]:.4f}")
    best_params, best_score = max(table, key=lambda row: row[1])
    return TuningResult(kind, best_params, best_score, table, time.perf_counter() - start)


def tune_ensemble(tuned: Mapping[str, TuningResult], dataset: RoutingDataset,
                  features: FloatArray, *, folds: int = 3, seed: int = 0,
                  progress: Progress | None = None) -> TuningResult:
    """Choose ensemble membership (among tuned members) by the same CV."""
    options = [list(o) for o in ENSEMBLE_OPTIONS if all(k in tuned for k in o)]
    base = {k: t.params for k, t in tuned.items()}
    start = time.perf_counter()
    splits = kfold_indices(len(dataset), folds, seed)
    table: list[tuple[dict[str, Any], float]] = []
    for members in options:  # membership chosen with single members; the final fit bags them
        params = {"members": members, "bags": 1, **{k: base[k] for k in members}}
        scores = []
        for train_idx, valid_idx in splits:
            router = fit_router("ensemble", dataset.subset(train_idx), features[train_idx],
                                params, seed)
            scores.append(routing_score(router, dataset.subset(valid_idx), features[valid_idx]))
        table.append((params, float(np.mean(scores))))
        if progress is not None:
            progress(f"ensemble {members}: cv={table[-1][1]:.4f}")
    best_params, best_score = max(table, key=lambda row: row[1])
    best_params = {**best_params, "bags": DEFAULT_BAGS}
    return TuningResult("ensemble", best_params, best_score, table, time.perf_counter() - start)
