"""Matrix-factorisation quality predictor (RouteLLM's MF generalised to N models).

logit(quality[i, m]) = <P·x_i, v_m> + b_m : prompts are projected into a k-dimensional space in
which every model has a vector. Onboarding a new model fits only its (v, b) with P and the other
models frozen, so it needs only that model's outcomes on a few hundred prompts.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from switchyard.learn.routers._optim import GradientState, Params, logit, masked_bce, sigmoid, train
from switchyard.learn.routers.base import (
    FloatArray,
    Groups,
    observed_column_means,
    register_predictor,
)


@register_predictor("mf")
class MFPredictor(GradientState):
    kind: ClassVar[str] = "mf"
    SIZE: ClassVar[str] = "rank"
    PARAM_KEYS: ClassVar[tuple[str, ...]] = ("proj", "vectors", "bias")

    def __init__(self, rank: int = 32, epochs: int = 30, lr: float = 3e-3, l2: float = 1e-3,
                 batch_size: int = 128) -> None:
        self.rank = rank
        self.epochs = epochs
        self.lr = lr
        self.l2 = l2
        self.batch_size = batch_size
        self.params: Params = {}

    def fit(self, features: FloatArray, quality: FloatArray, seed: int = 0,
            groups: Groups = None) -> None:
        rng = np.random.default_rng(seed)
        dim, models = features.shape[1], quality.shape[1]
        self.params = {
            "proj": rng.normal(0.0, 1.0 / np.sqrt(dim), (dim, self.rank)),
            "vectors": rng.normal(0.0, 0.1, (models, self.rank)),
            "bias": logit(observed_column_means(quality)),
        }
        train(self, features, quality, epochs=self.epochs, batch_size=self.batch_size,
              lr=self.lr, l2={"proj": self.l2, "vectors": self.l2}, seed=seed)

    def loss_and_grads(self, features: FloatArray, targets: FloatArray,
                       mask: FloatArray) -> tuple[float, Params]:
        latent = features @ self.params["proj"]
        logits = latent @ self.params["vectors"].T + self.params["bias"]
        loss, d_logits = masked_bce(logits, targets, mask)
        d_latent = d_logits @ self.params["vectors"]
        grads: Params = {
            "vectors": d_logits.T @ latent,
            "bias": d_logits.sum(axis=0),
            "proj": features.T @ d_latent,
        }
        return loss, grads

    def predict(self, features: FloatArray) -> FloatArray:
        latent = features @ self.params["proj"]
        return sigmoid(latent @ self.params["vectors"].T + self.params["bias"])

    def onboard(self, features: FloatArray, quality: FloatArray, seed: int = 0,
                epochs: int = 60) -> int:
        """Append a model from its outcomes `quality` [n] on `features`; returns its column."""
        self.params["vectors"] = np.vstack([self.params["vectors"], np.zeros((1, self.rank))])
        prior = float(np.nanmean(quality)) if np.any(~np.isnan(quality)) else 0.5
        self.params["bias"] = np.append(self.params["bias"], logit(np.array([prior]))[0])
        models = self.params["vectors"].shape[0]
        targets = np.full((features.shape[0], models), np.nan)
        targets[:, -1] = quality
        new_row = np.zeros(models)
        new_row[-1] = 1.0
        batch = max(16, min(self.batch_size, features.shape[0] // 4))
        train(self, features, targets, epochs=epochs, batch_size=batch, lr=self.lr,
              l2={"vectors": self.l2 * 10}, seed=seed, frozen=("proj",),
              row_masks={"vectors": new_row, "bias": new_row})
        return int(models) - 1
