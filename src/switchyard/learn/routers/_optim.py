"""Tiny numpy training loop shared by the neural predictors (MLP, MF, IRT).

Targets are qualities in [0, 1] (soft labels allowed); the loss is binary cross-entropy over the
observed cells only, plus an L2 penalty on the named weight matrices.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, ClassVar, Protocol, Self

import numpy as np

from switchyard.learn.routers.base import ArrayDict, FloatArray, JsonDict

Params = dict[str, FloatArray]


class Trainable(Protocol):
    params: Params

    def loss_and_grads(self, features: FloatArray, targets: FloatArray,
                       mask: FloatArray) -> tuple[float, Params]:
        """Masked BCE loss of one batch and its gradient for every parameter."""
        ...


def sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)), dtype=np.float64)


def logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, 1e-3, 1 - 1e-3)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)


def masked_bce(logits: FloatArray, targets: FloatArray,
               mask: FloatArray) -> tuple[float, FloatArray]:
    """Mean BCE over cells with mask 1, and d(loss)/d(logits)."""
    total = max(float(np.sum(mask)), 1.0)
    p = sigmoid(logits)
    eps = 1e-7
    loss = -np.sum(mask * (targets * np.log(p + eps) + (1 - targets) * np.log(1 - p + eps)))
    return float(loss) / total, mask * (p - targets) / total


class Adam:
    def __init__(self, params: Params, lr: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        self.params = params
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.first = {k: np.zeros_like(v) for k, v in params.items()}
        self.second = {k: np.zeros_like(v) for k, v in params.items()}
        self.steps = 0

    def step(self, grads: Mapping[str, FloatArray], frozen: Collection[str] = ()) -> None:
        self.steps += 1
        correction1 = 1 - self.beta1**self.steps
        correction2 = 1 - self.beta2**self.steps
        for name, grad in grads.items():
            if name in frozen:
                continue
            self.first[name] = self.beta1 * self.first[name] + (1 - self.beta1) * grad
            self.second[name] = self.beta2 * self.second[name] + (1 - self.beta2) * grad * grad
            update = (self.first[name] / correction1) / (
                np.sqrt(self.second[name] / correction2) + self.eps)
            self.params[name] -= self.lr * update


def train(model: Trainable, features: FloatArray, quality: FloatArray, *, epochs: int,
          batch_size: int, lr: float, l2: Mapping[str, float], seed: int,
          frozen: Collection[str] = (), row_masks: Mapping[str, FloatArray] | None = None) -> float:
    """Minibatch Adam on masked BCE. `row_masks[name]` zeroes gradient rows (onboarding).

    Returns the last epoch's mean training loss.
    """
    mask = (~np.isnan(quality)).astype(np.float64)
    targets = np.nan_to_num(quality, nan=0.0)
    optimiser = Adam(model.params, lr)
    rng = np.random.default_rng(seed)
    n = features.shape[0]
    last = float("nan")
    for _ in range(epochs):
        order = rng.permutation(n)
        losses: list[float] = []
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            loss, grads = model.loss_and_grads(features[batch], targets[batch], mask[batch])
            share = batch.shape[0] / n
            for name, weight in l2.items():
                if name in grads:
                    grads[name] = grads[name] + 2 * weight * share * model.params[name]
            if row_masks:
                for name, rows in row_masks.items():
                    grads[name] = grads[name] * rows.reshape((-1,) + (1,) * (grads[name].ndim - 1))
            optimiser.step(grads, frozen)
            losses.append(loss)
        last = float(np.mean(losses))
    return last


class GradientState:
    """Artifact (de)serialisation shared by the gradient-trained predictors.

    A subclass names its size hyper-parameter (`SIZE`: rank / dims / hidden) and its parameter
    arrays (`PARAM_KEYS`); its constructor takes that size plus epochs, lr, l2 and batch_size.
    """

    SIZE: ClassVar[str]
    PARAM_KEYS: ClassVar[tuple[str, ...]]
    params: Params
    epochs: int
    lr: float
    l2: float
    batch_size: int

    def to_state(self) -> tuple[ArrayDict, JsonDict]:
        settings: JsonDict = {
            self.SIZE: getattr(self, self.SIZE), "epochs": self.epochs, "lr": self.lr,
            "l2": self.l2, "batch_size": self.batch_size,
        }
        return {k: v.astype(np.float32) for k, v in self.params.items()}, settings

    @classmethod
    def from_state(cls, arrays: ArrayDict, params: JsonDict) -> Self:
        settings: dict[str, Any] = {
            cls.SIZE: int(params[cls.SIZE]), "epochs": int(params["epochs"]),
            "lr": float(params["lr"]), "l2": float(params["l2"]),
            "batch_size": int(params["batch_size"]),
        }
        predictor = cls(**settings)
        predictor.params = {k: np.asarray(arrays[k], dtype=np.float64) for k in cls.PARAM_KEYS}
        return predictor
