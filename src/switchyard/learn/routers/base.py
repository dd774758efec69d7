"""The learned-router contract: per-candidate quality and cost predictions, then a choice.

A router is a `QualityPredictor` (features -> expected quality per model), a `CostModel`
(prompt length -> expected USD per model) and a choice rule:

- `choose_by_lambda`: argmax over candidates of quality - λ · cost / reference_cost;
- `choose_by_threshold`: the cheapest candidate whose predicted quality clears a target
  (the best-predicted one when none does).

Everything here is pure numpy; the offline evaluator and the serving side call the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ArrayDict = dict[str, npt.NDArray[Any]]
JsonDict = dict[str, Any]
# Optional per-row training labels (e.g. the dataset's task/category). Only training may use
# them: a predictor must derive everything it needs at serving time from the features.
Groups = Sequence[str | None] | None


class QualityPredictor(Protocol):
    kind: ClassVar[str]

    def fit(self, features: FloatArray, quality: FloatArray, seed: int = 0,
            groups: Groups = None) -> None:
        """Learn from features [n, d] and quality [n, m] (NaN = outcome missing)."""
        ...

    def predict(self, features: FloatArray) -> FloatArray:
        """Expected quality in [0, 1], shape [n, m]."""
        ...

    def to_state(self) -> tuple[ArrayDict, JsonDict]:
        """Arrays and JSON-able parameters that `from_state` turns back into this predictor."""
        ...


PredictorLoader = Callable[[ArrayDict, JsonDict], QualityPredictor]
# kind -> loader. Filled by the predictor modules (see `switchyard.learn.routers`).
PREDICTOR_LOADERS: dict[str, PredictorLoader] = {}


def register_predictor(kind: str) -> Callable[[type[Any]], type[Any]]:
    def wrap(cls: type[Any]) -> type[Any]:
        PREDICTOR_LOADERS[kind] = cls.from_state
        return cls

    return wrap


def observed_column_means(quality: FloatArray, prior: float = 0.5) -> FloatArray:
    """Per-model mean of the observed outcomes; `prior` for a model with none."""
    counts = np.sum(~np.isnan(quality), axis=0)
    sums = np.nansum(quality, axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), prior)


@dataclass(frozen=True)
class LinearCostModel:
    """cost ≈ intercept + slope · prompt characters, per model (least squares, clipped ≥ 0)."""

    intercept: FloatArray
    slope: FloatArray

    @classmethod
    def fit(cls, prompt_chars: FloatArray, cost: FloatArray) -> LinearCostModel:
        m = cost.shape[1]
        intercept = np.zeros(m)
        slope = np.zeros(m)
        for j in range(m):
            seen = ~np.isnan(cost[:, j])
            if not np.any(seen):
                continue
            x, y = prompt_chars[seen], cost[seen, j]
            if np.ptp(x) == 0:
                intercept[j] = float(np.mean(y))
                continue
            design = np.stack([np.ones_like(x), x], axis=1)
            (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
            intercept[j], slope[j] = float(a), float(max(b, 0.0))
            if slope[j] == 0.0:
                intercept[j] = float(np.mean(y))
        return cls(intercept, slope)

    def predict(self, prompt_chars: FloatArray) -> FloatArray:
        chars = np.asarray(prompt_chars, dtype=np.float64).reshape(-1, 1)
        return np.maximum(self.intercept[None, :] + chars * self.slope[None, :], 0.0)


def choose_by_lambda(pred_quality: FloatArray, pred_cost: FloatArray, lam: float,
                     reference_cost: float, available: BoolArray | None = None) -> IndexArray:
    """Per row argmax of quality - λ·cost/reference_cost; ties go to the cheaper model."""
    utility = pred_quality - (lam / reference_cost) * pred_cost
    utility = utility - 1e-9 * pred_cost / reference_cost
    if available is not None:
        utility = np.where(available, utility, -np.inf)
    return np.asarray(np.argmax(utility, axis=1), dtype=np.int64)


def choose_by_threshold(pred_quality: FloatArray, pred_cost: FloatArray, target: float,
                        available: BoolArray | None = None) -> IndexArray:
    """Per row the cheapest model predicted to reach `target`, else the best-predicted one."""
    ok = available if available is not None else np.ones(pred_quality.shape, dtype=bool)
    clears = ok & (pred_quality >= target)
    cheapest = np.argmin(np.where(clears, pred_cost, np.inf), axis=1)
    best = np.argmax(np.where(ok, pred_quality - 1e-9 * pred_cost, -np.inf), axis=1)
    return np.asarray(np.where(np.any(clears, axis=1), cheapest, best), dtype=np.int64)


def model_columns(models: Sequence[str], wanted: Sequence[str]) -> list[int]:
    index = {m: j for j, m in enumerate(models)}
    return [index[m] for m in wanted if m in index]
