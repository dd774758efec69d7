"""MLP quality predictor: one shared hidden layer, one sigmoid head per model."""

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


@register_predictor("mlp")
class MLPPredictor(GradientState):
    """features -> relu(W1) -> per-model logits; masked BCE, L2 on weights, minibatch Adam."""

    kind: ClassVar[str] = "mlp"
    SIZE: ClassVar[str] = "hidden"
    PARAM_KEYS: ClassVar[tuple[str, ...]] = ("w1", "b1", "w2", "b2")

    def __init__(self, hidden: int = 64, epochs: int = 30, lr: float = 3e-3,
                 l2: float = 1e-3, batch_size: int = 128) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.l2 = l2
        self.batch_size = batch_size
        self.params: Params = {}

    def _init(self, dim: int, models: int, prior: FloatArray, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.params = {
            "w1": rng.normal(0.0, 1.0 / np.sqrt(dim), (dim, self.hidden)),
            "b1": np.zeros(self.hidden),
            "w2": rng.normal(0.0, 1.0 / np.sqrt(self.hidden), (self.hidden, models)) * 0.1,
            "b2": logit(prior),
        }

    def fit(self, features: FloatArray, quality: FloatArray, seed: int = 0,
            groups: Groups = None) -> None:
        self._init(features.shape[1], quality.shape[1], observed_column_means(quality), seed)
        train(self, features, quality, epochs=self.epochs, batch_size=self.batch_size,
              lr=self.lr, l2={"w1": self.l2, "w2": self.l2}, seed=seed)

    def _forward(self, features: FloatArray) -> tuple[FloatArray, FloatArray]:
        hidden = np.maximum(features @ self.params["w1"] + self.params["b1"], 0.0)
        return hidden, hidden @ self.params["w2"] + self.params["b2"]

    def loss_and_grads(self, features: FloatArray, targets: FloatArray,
                       mask: FloatArray) -> tuple[float, Params]:
        hidden, logits = self._forward(features)
        loss, d_logits = masked_bce(logits, targets, mask)
        d_hidden = (d_logits @ self.params["w2"].T) * (hidden > 0)
        grads: Params = {
            "w2": hidden.T @ d_logits,
            "b2": d_logits.sum(axis=0),
            "w1": features.T @ d_hidden,
            "b1": d_hidden.sum(axis=0),
        }
        return loss, grads

    def predict(self, features: FloatArray) -> FloatArray:
        return sigmoid(self._forward(features)[1])
