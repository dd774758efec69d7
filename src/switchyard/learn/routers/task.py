"""Task-prior quality predictor: what kind of task is this prompt, how good is each model at it.

    quality(x, m) = Σ_t P(t | x) · μ[t, m]

P(t | x) is a softmax classifier on the prompt's features, so at serving time only the prompt text
is needed. The tasks are the training rows' categories when the data has them (the label is used
for training only), else spherical k-means clusters of the training prompts. μ[t, m] is model
m's mean training quality on task t, shrunk toward its global mean by `shrinkage` pseudo-rows.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from switchyard.learn.routers._optim import Adam, Params
from switchyard.learn.routers.base import (
    ArrayDict,
    FloatArray,
    Groups,
    IndexArray,
    JsonDict,
    observed_column_means,
    register_predictor,
)


def softmax(logits: FloatArray) -> FloatArray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float64)


def spherical_kmeans(features: FloatArray, clusters: int, seed: int,
                     iterations: int = 25) -> IndexArray:
    """Cluster ids by cosine k-means (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    k = min(clusters, unit.shape[0])
    centres = unit[rng.choice(unit.shape[0], size=k, replace=False)]
    labels = np.zeros(unit.shape[0], dtype=np.int64)
    for _ in range(iterations):
        labels = np.asarray(np.argmax(unit @ centres.T, axis=1), dtype=np.int64)
        for j in range(k):
            members = unit[labels == j]
            if members.shape[0]:
                centre = members.sum(axis=0)
                centres[j] = centre / max(float(np.linalg.norm(centre)), 1e-12)
    return labels


@register_predictor("task")
class TaskPredictor:
    kind: ClassVar[str] = "task"

    def __init__(self, l2: float = 1e-4, epochs: int = 40, lr: float = 1e-2,
                 shrinkage: float = 10.0, clusters: int = 16, batch_size: int = 256) -> None:
        self.l2 = l2
        self.epochs = epochs
        self.lr = lr
        self.shrinkage = shrinkage
        self.clusters = clusters
        self.batch_size = batch_size
        self.params: Params = {}
        self.task_names: list[str] = []

    def _task_labels(self, features: FloatArray, groups: Groups, seed: int) -> IndexArray:
        names = sorted({g for g in groups or () if g is not None})
        if groups is not None and len(names) >= 2:
            if any(g is None for g in groups):
                names.append("(none)")
            self.task_names = names
            index = {n: i for i, n in enumerate(names)}
            return np.array([index[g if g is not None else "(none)"] for g in groups],
                            dtype=np.int64)
        labels = spherical_kmeans(features, self.clusters, seed)
        self.task_names = [f"cluster-{j}" for j in range(int(labels.max()) + 1)]
        return labels

    def fit(self, features: FloatArray, quality: FloatArray, seed: int = 0,
            groups: Groups = None) -> None:
        labels = self._task_labels(features, groups, seed)
        tasks = len(self.task_names)
        global_means = observed_column_means(quality)
        means = np.zeros((tasks, quality.shape[1]))
        for t in range(tasks):
            rows = quality[labels == t]
            seen = ~np.isnan(rows)
            means[t] = (np.nansum(rows, axis=0) + self.shrinkage * global_means) / (
                seen.sum(axis=0) + self.shrinkage)
        self.params = {"weights": np.zeros((features.shape[1], tasks)),
                       "bias": np.zeros(tasks), "means": means}
        self._train_classifier(features, labels, seed)

    def _train_classifier(self, features: FloatArray, labels: IndexArray, seed: int) -> None:
        trainable = {k: self.params[k] for k in ("weights", "bias")}
        optimiser = Adam(trainable, self.lr)
        rng = np.random.default_rng(seed)
        n = features.shape[0]
        onehot = np.eye(len(self.task_names))[labels]
        for _ in range(self.epochs):
            order = rng.permutation(n)
            for start in range(0, n, self.batch_size):
                batch = order[start : start + self.batch_size]
                x = features[batch]
                probabilities = softmax(x @ trainable["weights"] + trainable["bias"])
                d_logits = (probabilities - onehot[batch]) / batch.shape[0]
                grads = {"weights": x.T @ d_logits
                         + 2 * self.l2 * trainable["weights"] * batch.shape[0] / n,
                         "bias": d_logits.sum(axis=0)}
                optimiser.step(grads)
        self.params.update(trainable)

    def task_probabilities(self, features: FloatArray) -> FloatArray:
        return softmax(features @ self.params["weights"] + self.params["bias"])

    def predict(self, features: FloatArray) -> FloatArray:
        return self.task_probabilities(features) @ self.params["means"]

    def to_state(self) -> tuple[ArrayDict, JsonDict]:
        params: JsonDict = {"l2": self.l2, "epochs": self.epochs, "lr": self.lr,
                            "shrinkage": self.shrinkage, "clusters": self.clusters,
                            "batch_size": self.batch_size, "task_names": self.task_names}
        return {k: v.astype(np.float32) for k, v in self.params.items()}, params

    @classmethod
    def from_state(cls, arrays: ArrayDict, params: JsonDict) -> TaskPredictor:
        predictor = cls(l2=float(params["l2"]), epochs=int(params["epochs"]),
                        lr=float(params["lr"]), shrinkage=float(params["shrinkage"]),
                        clusters=int(params["clusters"]), batch_size=int(params["batch_size"]))
        predictor.task_names = [str(n) for n in params["task_names"]]
        predictor.params = {k: np.asarray(arrays[k], dtype=np.float64)
                            for k in ("weights", "bias", "means")}
        return predictor
