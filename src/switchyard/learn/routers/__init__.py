"""Learned routers: quality predictors (knn, mf, mlp, irt, task, ensemble) and choice rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from switchyard.learn.routers.base import PREDICTOR_LOADERS, QualityPredictor
from switchyard.learn.routers.baselines import ConstantPredictor
from switchyard.learn.routers.ensemble import EnsemblePredictor
from switchyard.learn.routers.irt import IRTPredictor
from switchyard.learn.routers.knn import KNNPredictor
from switchyard.learn.routers.mf import MFPredictor
from switchyard.learn.routers.mlp import MLPPredictor
from switchyard.learn.routers.task import TaskPredictor

PREDICTOR_TYPES: dict[str, Callable[..., QualityPredictor]] = {
    "knn": KNNPredictor,
    "mf": MFPredictor,
    "mlp": MLPPredictor,
    "irt": IRTPredictor,
    "task": TaskPredictor,
    "constant": ConstantPredictor,
}


def make_predictor(kind: str, **params: Any) -> QualityPredictor:
    """A fresh predictor of `kind` ("knn", "mf", "mlp", "irt", "task", "constant")."""
    try:
        factory = PREDICTOR_TYPES[kind]
    except KeyError:
        raise ValueError(f"unknown router {kind!r}; known: {sorted(PREDICTOR_TYPES)}") from None
    return factory(**params)


__all__ = [
    "PREDICTOR_LOADERS",
    "PREDICTOR_TYPES",
    "ConstantPredictor",
    "EnsemblePredictor",
    "IRTPredictor",
    "KNNPredictor",
    "MFPredictor",
    "MLPPredictor",
    "TaskPredictor",
    "make_predictor",
]
