"""kNN quality predictor: similarity-weighted mean outcome of the nearest training prompts."""

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


@register_predictor("knn")
class KNNPredictor:
    """Cosine kNN on L2-normalised features.

    Weights are exp(similarity / temperature) (distance-weighted; a large temperature gives a plain
    mean). `prior_weight` adds that many pseudo-neighbours at each model's global mean, which
    shrinks predictions for prompts whose neighbours are far or have few observed outcomes.
    """

    kind: ClassVar[str] = "knn"

    def __init__(self, k: int = 40, temperature: float = 0.05, prior_weight: float = 0.0,
                 chunk: int = 2048) -> None:
        self.k = k
        self.temperature = temperature
        self.prior_weight = prior_weight
        self.chunk = chunk
        self._keys = np.zeros((0, 0), dtype=np.float32)
        self._values = np.zeros((0, 0), dtype=np.float32)
        self._seen = np.zeros((0, 0), dtype=bool)
        self._prior = np.zeros(0)

    def fit(self, features: FloatArray, quality: FloatArray, seed: int = 0,
            groups: Groups = None) -> None:
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        self._keys = (features / np.maximum(norms, 1e-12)).astype(np.float32)
        self._seen = ~np.isnan(quality)
        self._values = np.nan_to_num(quality, nan=0.0).astype(np.float32)
        self._prior = observed_column_means(quality)

    def predict(self, features: FloatArray) -> FloatArray:
        queries = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        queries = queries.astype(np.float32)
        out = np.empty((queries.shape[0], self._values.shape[1]))
        k = min(self.k, self._keys.shape[0])
        for start in range(0, queries.shape[0], self.chunk):
            sims = queries[start : start + self.chunk] @ self._keys.T
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            top_sims = np.take_along_axis(sims, top, axis=1).astype(np.float64)
            weights = np.exp((top_sims - top_sims.max(axis=1, keepdims=True)) / self.temperature)
            seen = self._seen[top]  # [q, k, m]
            values = self._values[top].astype(np.float64)
            w = weights[:, :, None] * seen
            prior = self.prior_weight * np.mean(weights, axis=1, keepdims=True)
            numerator = np.sum(w * values, axis=1) + prior * self._prior[None, :]
            denominator = np.sum(w, axis=1) + prior
            out[start : start + self.chunk] = np.where(
                denominator > 0, numerator / np.maximum(denominator, 1e-300), self._prior[None, :]
            )
        return out

    def to_state(self) -> tuple[ArrayDict, JsonDict]:
        arrays: ArrayDict = {
            "keys": self._keys,
            "values": self._values.astype(np.float16),
            "seen": self._seen,
            "prior": self._prior,
        }
        params: JsonDict = {"k": self.k, "temperature": self.temperature,
                            "prior_weight": self.prior_weight}
        return arrays, params

    @classmethod
    def from_state(cls, arrays: ArrayDict, params: JsonDict) -> KNNPredictor:
        predictor = cls(k=int(params["k"]), temperature=float(params["temperature"]),
                        prior_weight=float(params["prior_weight"]))
        predictor._keys = np.asarray(arrays["keys"], dtype=np.float32)
        predictor._values = np.asarray(arrays["values"], dtype=np.float32)
        predictor._seen = np.asarray(arrays["seen"], dtype=bool)
        predictor._prior = np.asarray(arrays["prior"], dtype=np.float64)
        return predictor
