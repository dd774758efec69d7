"""A gradient-boosted tree ensemble evaluated with numpy (no pickle, no sklearn at run time).

All trees live in flat node arrays. A leaf points to itself with an infinite threshold, so
every row simply takes `depth` steps: `node = left if x[feature] <= threshold else right`.
The raw score is `baseline + sum of the leaf values` (shrinkage already folded into them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class TreeEnsemble:
    feature: Ints
    threshold: Floats
    left: Ints
    right: Ints
    value: Floats
    roots: Ints
    depth: int
    baseline: float

    def raw(self, features: npt.NDArray[Any]) -> Floats:
        """Sum of the trees' leaf values plus the baseline, one per row of `features`."""
        x = np.asarray(features, dtype=np.float64)
        flat = x.ravel()
        row_start = (np.arange(x.shape[0]) * x.shape[1])[:, None]
        node = np.tile(self.roots, (x.shape[0], 1))
        feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
        for _ in range(self.depth):
            goes_left = flat[feature[node] + row_start] <= threshold[node]
            node = np.where(goes_left, left[node], right[node])
        result: Floats = self.baseline + self.value[node].sum(axis=1)
        return result

    def arrays(self, prefix: str = "tree_") -> dict[str, npt.NDArray[Any]]:
        return {
            f"{prefix}feature": self.feature,
            f"{prefix}threshold": self.threshold,
            f"{prefix}left": self.left,
            f"{prefix}right": self.right,
            f"{prefix}value": self.value,
            f"{prefix}roots": self.roots,
            f"{prefix}depth": np.asarray(self.depth, dtype=np.int32),
            f"{prefix}baseline": np.asarray(self.baseline, dtype=np.float64),
        }

    @classmethod
    def from_arrays(
        cls, data: Mapping[str, npt.NDArray[Any]], prefix: str = "tree_"
    ) -> TreeEnsemble:
        return cls(
            feature=data[f"{prefix}feature"].astype(np.int32),
            threshold=data[f"{prefix}threshold"].astype(np.float64),
            left=data[f"{prefix}left"].astype(np.int32),
            right=data[f"{prefix}right"].astype(np.int32),
            value=data[f"{prefix}value"].astype(np.float64),
            roots=data[f"{prefix}roots"].astype(np.int32),
            depth=int(data[f"{prefix}depth"]),
            baseline=float(data[f"{prefix}baseline"]),
        )

    @classmethod
    def from_nodes(
        cls, trees: Sequence[Mapping[str, npt.NDArray[Any]]], baseline: float
    ) -> TreeEnsemble:
        """Flatten per-tree node tables (`feature`, `threshold`, `left`, `right`, `value`,
        `is_leaf`, `depth`; children indexed within their tree, root at 0)."""
        feature: list[Ints] = []
        threshold: list[Floats] = []
        left: list[Ints] = []
        right: list[Ints] = []
        value: list[Floats] = []
        roots: list[int] = []
        depth = 0
        offset = 0
        for nodes in trees:
            leaf = nodes["is_leaf"].astype(bool)
            own = np.arange(len(leaf), dtype=np.int32) + offset
            feature.append(np.where(leaf, 0, nodes["feature"]).astype(np.int32))
            threshold.append(np.where(leaf, np.inf, nodes["threshold"]).astype(np.float64))
            left.append(np.where(leaf, own, nodes["left"] + offset).astype(np.int32))
            right.append(np.where(leaf, own, nodes["right"] + offset).astype(np.int32))
            value.append(np.where(leaf, nodes["value"], 0.0).astype(np.float64))
            roots.append(offset)
            depth = max(depth, int(nodes["depth"].max()))
            offset += len(leaf)
        return cls(
            np.concatenate(feature),
            np.concatenate(threshold),
            np.concatenate(left),
            np.concatenate(right),
            np.concatenate(value),
            np.asarray(roots, dtype=np.int32),
            depth,
            baseline,
        )
