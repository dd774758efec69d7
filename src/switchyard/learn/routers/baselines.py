"""Prompt-blind predictors: what a router knows without looking at the prompt."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from switchyard.learn.routers.base import (
    ArrayDict,
    FloatArray,
    Groups,
    JsonDict,
    observed_column_means,
    register_predictor,
)


@register_predictor("constant")
class ConstantPredictor:
    """Every prompt gets each model's mean training quality.

    Swept over λ it walks the single models on the zero-router hull (cheapest ... best single),
    so it is the learned-router baseline that ignores the prompt.
    """

    kind: ClassVar[str] = "constant"

    def __init__(self) -> None:
        self._means = np.zeros(0)

    def fit(self, features: FloatArray, quality: FloatArray, seed: int = 0,
            groups: Groups = None) -> None:
        self._means = observed_column_means(quality)

    def predict(self, features: FloatArray) -> FloatArray:
        return np.tile(self._means, (features.shape[0], 1))

    def to_state(self) -> tuple[ArrayDict, JsonDict]:
        return {"means": self._means}, {}

    @classmethod
    def from_state(cls, arrays: ArrayDict, params: JsonDict) -> ConstantPredictor:
        predictor = cls()
        predictor._means = np.asarray(arrays["means"], dtype=np.float64)
        return predictor
