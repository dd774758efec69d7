"""Ensemble predictor: a weighted mean of other predictors' quality estimates (e.g. kNN + MLP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from switchyard.learn.routers.base import (
    PREDICTOR_LOADERS,
    ArrayDict,
    FloatArray,
    Groups,
    JsonDict,
    QualityPredictor,
    register_predictor,
)


@register_predictor("ensemble")
class EnsemblePredictor:
    kind: ClassVar[str] = "ensemble"

    def __init__(self, members: Sequence[QualityPredictor],
                 weights: Sequence[float] | None = None) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)
        raw = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=float)
        self.weights = raw / raw.sum()

    def fit(self, features: FloatArray, quality: FloatArray, seed: int = 0,
            groups: Groups = None) -> None:
        for offset, member in enumerate(self.members):
            member.fit(features, quality, seed=seed + offset, groups=groups)

    def predict(self, features: FloatArray) -> FloatArray:
        total = np.zeros(0)
        for weight, member in zip(self.weights, self.members, strict=True):
            part = weight * member.predict(features)
            total = part if total.size == 0 else total + part
        return total

    def to_state(self) -> tuple[ArrayDict, JsonDict]:
        arrays: ArrayDict = {}
        members: list[JsonDict] = []
        for index, member in enumerate(self.members):
            member_arrays, member_params = member.to_state()
            arrays.update({f"m{index}.{key}": value for key, value in member_arrays.items()})
            members.append({"kind": member.kind, "params": member_params})
        return arrays, {"members": members, "weights": self.weights.tolist()}

    @classmethod
    def from_state(cls, arrays: ArrayDict, params: JsonDict) -> EnsemblePredictor:
        members: list[QualityPredictor] = []
        for index, spec in enumerate(params["members"]):
            prefix = f"m{index}."
            own = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            members.append(PREDICTOR_LOADERS[str(spec["kind"])](own, dict(spec["params"])))
        return cls(members, [float(w) for w in params["weights"]])
