"""Onboarding experiment: add a model to a trained MF/IRT router from a few of its outcomes.

The router is trained without model M; M's vector is then fitted on its outcomes for n training
prompts (everything else frozen) and the router is evaluated on the test split with all models.
Compared with: the router that never saw M, and the router trained with M on all of train.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from switchyard.learn.artifacts import TrainedRouter
from switchyard.learn.datasets import RoutingDataset
from switchyard.learn.evaluate import reference_for, summarise, sweep_lambda
from switchyard.learn.routers import PREDICTOR_LOADERS, IRTPredictor, MFPredictor
from switchyard.learn.routers.base import FloatArray, LinearCostModel
from switchyard.learn.training import fit_router, prompt_chars, single_threaded_blas

KEYS = ("aiq", "cost_ratio_to_match_best", "quality_at_25pct_best_cost")


def _evaluate(router: TrainedRouter, test: RoutingDataset,
              features: FloatArray) -> dict[str, float | None]:
    data = test.restrict_models(router.models)
    pred_quality, pred_cost = router.predict(features, prompt_chars(data))
    curve = sweep_lambda(router.kind, pred_quality, pred_cost, data, router.reference_cost)
    metrics = summarise(curve, reference_for(data), data)
    return {k: metrics.get(k) for k in KEYS}


def onboard_copy(router: TrainedRouter, train: RoutingDataset, features: FloatArray,
                 model: str, rows: Sequence[int], seed: int) -> TrainedRouter:
    """A copy of `router` with `model` onboarded from its outcomes on `rows` of `train`."""
    arrays, params = router.predictor.to_state()
    predictor = PREDICTOR_LOADERS[router.predictor.kind](arrays, params)
    if not isinstance(predictor, MFPredictor | IRTPredictor):
        raise ValueError("onboarding needs an mf or irt router")
    column = train.models.index(model)
    index = np.asarray(rows, dtype=np.int64)
    with single_threaded_blas():
        predictor.onboard(features[index], train.quality[index, column], seed=seed)
    models = (*router.models, model)
    ordered = train.restrict_models(models)
    cost_model = LinearCostModel.fit(prompt_chars(ordered), ordered.cost)
    return TrainedRouter(router.kind, models, predictor, cost_model, router.reference_cost,
                         router.embedder_id, router.feature_set, dict(router.meta))


def onboarding_experiment(kind: str, train: RoutingDataset, test: RoutingDataset,
                          train_features: FloatArray, test_features: FloatArray, model: str,
                          params: Mapping[str, Any], sizes: Sequence[int] = (50, 200, 1000),
                          seeds: Sequence[int] = (0, 1, 2)) -> dict[str, Any]:
    """Median metrics over seeds for each onboarding size, plus the two reference routers."""
    others = tuple(m for m in train.models if m != model)
    without = fit_router(kind, train.restrict_models(others), train_features, params)
    with_all = fit_router(kind, train, train_features, params)
    result: dict[str, Any] = {
        "model": model,
        "router": kind,
        "without_model": _evaluate(without, test, test_features),
        "trained_with_all": _evaluate(with_all, test, test_features),
        "onboarded": {},
    }
    for size in sizes:
        runs = []
        for seed in seeds:
            rows = np.random.default_rng(seed).choice(len(train), size=min(size, len(train)),
                                                      replace=False)
            router = onboard_copy(without, train, train_features, model, rows.tolist(), seed)
            runs.append(_evaluate(router, test, test_features))
        result["onboarded"][str(size)] = {
            k: _median([r[k] for r in runs]) for k in KEYS}
    return result


def _median(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    if len(finite) < len(values) / 2 or not finite:
        return None  # most runs never reached the target: report "not reached"
    padded = finite + [float("inf")] * (len(values) - len(finite))
    return float(np.median(padded))
