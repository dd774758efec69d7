"""Item-response-theory quality predictor.

Each prompt (item) gets, from its features, a discrimination a_i > 0, a difficulty b_i and a
k-dimensional skill profile u_i; each model has an ability vector θ_m and an offset c_m::

    logit(quality[i, m]) = a_i · (<θ_m, u_i> − b_i) + c_m

a_i = exp(clip(w_a·x_i + a_0)), b_i = w_b·x_i + b_0, u_i = U·x_i. Onboarding a new model fits
only (θ, c) with everything else frozen.
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

_ITEM_KEYS = ("disc_w", "disc_b", "diff_w", "diff_b", "skill")
_MODEL_KEYS = ("ability", "offset")


@register_predictor("irt")
class IRTPredictor(GradientState):
    kind: ClassVar[str] = "irt"
    SIZE: ClassVar[str] = "dims"
    PARAM_KEYS: ClassVar[tuple[str, ...]] = _ITEM_KEYS + _MODEL_KEYS

    def __init__(self, dims: int = 16, epochs: int = 30, lr: float = 3e-3, l2: float = 1e-3,
                 batch_size: int = 128) -> None:
        self.dims = dims
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
            "disc_w": np.zeros(dim),
            "disc_b": np.zeros(1),
            "diff_w": np.asarray(rng.normal(0.0, 0.01, dim), dtype=np.float64),
            "diff_b": np.zeros(1),
            "skill": rng.normal(0.0, 1.0 / np.sqrt(dim), (dim, self.dims)),
            "ability": rng.normal(0.0, 0.1, (models, self.dims)),
            "offset": logit(observed_column_means(quality)),
        }
        weights = {k: self.l2 for k in ("disc_w", "diff_w", "skill", "ability")}
        train(self, features, quality, epochs=self.epochs, batch_size=self.batch_size,
              lr=self.lr, l2=weights, seed=seed)

    def _items(self, features: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        raw = features @ self.params["disc_w"] + self.params["disc_b"][0]
        discrimination = np.exp(np.clip(raw, -3.0, 3.0))
        difficulty = features @ self.params["diff_w"] + self.params["diff_b"][0]
        skills = features @ self.params["skill"]
        return discrimination, difficulty, skills

    def loss_and_grads(self, features: FloatArray, targets: FloatArray,
                       mask: FloatArray) -> tuple[float, Params]:
        disc, diff, skills = self._items(features)
        margin = skills @ self.params["ability"].T - diff[:, None]
        logits = disc[:, None] * margin + self.params["offset"]
        loss, d_logits = masked_bce(logits, targets, mask)
        d_margin = d_logits * disc[:, None]
        d_disc_raw = np.sum(d_logits * margin, axis=1) * disc
        d_diff = -np.sum(d_margin, axis=1)
        d_skills = d_margin @ self.params["ability"]
        grads: Params = {
            "offset": d_logits.sum(axis=0),
            "ability": d_margin.T @ skills,
            "skill": features.T @ d_skills,
            "diff_w": features.T @ d_diff,
            "diff_b": np.array([d_diff.sum()]),
            "disc_w": features.T @ d_disc_raw,
            "disc_b": np.array([d_disc_raw.sum()]),
        }
        return loss, grads

    def predict(self, features: FloatArray) -> FloatArray:
        disc, diff, skills = self._items(features)
        margin = skills @ self.params["ability"].T - diff[:, None]
        return sigmoid(disc[:, None] * margin + self.params["offset"])

    def difficulty(self, features: FloatArray) -> FloatArray:
        """Per-prompt difficulty b_i (higher = harder for every model)."""
        return self._items(features)[1]

    def onboard(self, features: FloatArray, quality: FloatArray, seed: int = 0,
                epochs: int = 60) -> int:
        """Append a model from its outcomes `quality` [n] on `features`; returns its column."""
        self.params["ability"] = np.vstack([self.params["ability"], np.zeros((1, self.dims))])
        prior = float(np.nanmean(quality)) if np.any(~np.isnan(quality)) else 0.5
        self.params["offset"] = np.append(self.params["offset"], logit(np.array([prior]))[0])
        models = self.params["ability"].shape[0]
        targets = np.full((features.shape[0], models), np.nan)
        targets[:, -1] = quality
        new_row = np.zeros(models)
        new_row[-1] = 1.0
        batch = max(16, min(self.batch_size, features.shape[0] // 4))
        train(self, features, targets, epochs=epochs, batch_size=batch, lr=self.lr,
              l2={"ability": self.l2 * 10}, seed=seed, frozen=_ITEM_KEYS,
              row_masks={"ability": new_row, "offset": new_row})
        return int(models) - 1
