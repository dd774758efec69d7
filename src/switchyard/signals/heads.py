"""Small trained classifier heads over sentence embeddings, stored as `.npz` (no pickle).

A head is `softmax(x @ W.T + b)` over `labels` (multi-class) or, with one row and
`kind="binary"`, `sigmoid(x @ w + b)`. An optional hidden layer (`hidden_weights`,
`hidden_bias`, ReLU) makes it a one-layer MLP. `meta` holds JSON (threshold, training
provenance) next to the arrays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from switchyard.embed.base import Vectors

FloatArray = npt.NDArray[np.float32]


def bundled_weights(name: str) -> Path:
    """Path of a weights file committed under `switchyard/signals/weights/`."""
    return Path(str(resources.files("switchyard.signals") / "weights" / name))


@dataclass(frozen=True)
class ClassifierHead:
    labels: tuple[str, ...]
    weights: FloatArray  # [classes, features] (binary: [1, features])
    bias: FloatArray  # [classes]
    kind: str = "multiclass"  # or "binary"
    hidden_weights: FloatArray | None = None  # [hidden, inputs]
    hidden_bias: FloatArray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def features(self, vectors: Vectors) -> FloatArray:
        if self.hidden_weights is None or self.hidden_bias is None:
            return vectors
        hidden: FloatArray = np.maximum(vectors @ self.hidden_weights.T + self.hidden_bias, 0.0)
        return hidden

    def logits(self, vectors: Vectors) -> FloatArray:
        result: FloatArray = self.features(vectors) @ self.weights.T + self.bias
        return result

    def probabilities(self, vectors: Vectors) -> FloatArray:
        """Multi-class: [n, classes] rows summing to 1. Binary: [n] positive-class scores."""
        logits = self.logits(vectors).astype(np.float64)
        if self.kind == "binary":
            binary: FloatArray = (1.0 / (1.0 + np.exp(-logits[:, 0]))).astype(np.float32)
            return binary
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        multi: FloatArray = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
        return multi

    def save(self, path: Path) -> None:
        arrays: dict[str, npt.NDArray[Any]] = {
            "labels": np.array(self.labels, dtype=np.str_),
            "weights": self.weights.astype(np.float32),
            "bias": self.bias.astype(np.float32),
            "kind": np.array(self.kind, dtype=np.str_),
            "meta": np.array(json.dumps(self.meta, sort_keys=True), dtype=np.str_),
        }
        if self.hidden_weights is not None and self.hidden_bias is not None:
            arrays["hidden_weights"] = self.hidden_weights.astype(np.float32)
            arrays["hidden_bias"] = self.hidden_bias.astype(np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as file:
            np.savez_compressed(file, **cast(dict[str, Any], arrays))

    @classmethod
    def load(cls, path: Path) -> ClassifierHead:
        with np.load(path, allow_pickle=False) as data:
            hidden = "hidden_weights" in data.files
            return cls(
                labels=tuple(str(label) for label in data["labels"]),
                weights=data["weights"].astype(np.float32),
                bias=data["bias"].astype(np.float32),
                kind=str(data["kind"]),
                hidden_weights=data["hidden_weights"].astype(np.float32) if hidden else None,
                hidden_bias=data["hidden_bias"].astype(np.float32) if hidden else None,
                meta=json.loads(str(data["meta"])),
            )
