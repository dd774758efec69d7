"""Routing-outcome datasets: per-prompt quality and cost of every model that answered it.

Format (one JSON object per line, optionally gzip-compressed)::

    {"id": ..., "prompt": ..., "category": ... | null,
     "outcomes": {"<model>": {"quality": 0..1, "cost": USD}, ...}}

Any set of models is accepted; a model absent from a row's `outcomes` is stored as NaN.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from switchyard.errors import ConfigError

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RoutingDataset:
    """Outcomes as dense [n_prompts, n_models] matrices; NaN marks a missing outcome."""

    name: str
    ids: tuple[str, ...]
    prompts: tuple[str, ...]
    categories: tuple[str | None, ...]
    models: tuple[str, ...]
    quality: FloatArray
    cost: FloatArray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def observed(self) -> npt.NDArray[np.bool_]:
        return ~np.isnan(self.quality)

    def subset(self, index: Sequence[int] | IndexArray, name: str | None = None) -> RoutingDataset:
        idx = np.asarray(index, dtype=np.int64)
        return RoutingDataset(
            name=name or self.name,
            ids=tuple(self.ids[i] for i in idx),
            prompts=tuple(self.prompts[i] for i in idx),
            categories=tuple(self.categories[i] for i in idx),
            models=self.models,
            quality=self.quality[idx],
            cost=self.cost[idx],
        )

    def restrict_models(self, models: Sequence[str]) -> RoutingDataset:
        """Keep only `models` (in that order); unknown names raise."""
        missing = [m for m in models if m not in self.models]
        if missing:
            raise ConfigError([f"models not in dataset {self.name}: {missing}"])
        cols = [self.models.index(m) for m in models]
        return RoutingDataset(
            self.name, self.ids, self.prompts, self.categories, tuple(models),
            self.quality[:, cols], self.cost[:, cols],
        )

    def mean_quality(self) -> FloatArray:
        return np.asarray(np.nanmean(self.quality, axis=0), dtype=np.float64)

    def mean_cost(self) -> FloatArray:
        return np.asarray(np.nanmean(self.cost, axis=0), dtype=np.float64)


def _open_text(path: Path) -> Iterable[str]:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            yield from handle
    else:
        with path.open(encoding="utf-8") as handle:
            yield from handle


def parse_rows(rows: Iterable[dict[str, Any]], name: str) -> RoutingDataset:
    """Build a dataset from already-decoded rows (any model set, missing outcomes allowed)."""
    ids: list[str] = []
    prompts: list[str] = []
    categories: list[str | None] = []
    outcomes: list[dict[str, Any]] = []
    model_order: dict[str, None] = {}
    for number, row in enumerate(rows):
        try:
            prompt = str(row["prompt"])
            row_outcomes = dict(row["outcomes"])
        except (KeyError, TypeError) as exc:
            raise ConfigError([f"{name}: row {number} lacks prompt/outcomes ({exc})"]) from exc
        ids.append(str(row.get("id", f"{name}-{number}")))
        prompts.append(prompt)
        category = row.get("category")
        categories.append(None if category is None else str(category))
        outcomes.append(row_outcomes)
        for model in row_outcomes:
            model_order.setdefault(model, None)
    models = tuple(sorted(model_order))
    quality = np.full((len(ids), len(models)), np.nan)
    cost = np.full((len(ids), len(models)), np.nan)
    column = {m: j for j, m in enumerate(models)}
    for i, row_outcomes in enumerate(outcomes):
        for model, outcome in row_outcomes.items():
            if outcome is None or outcome.get("quality") is None:
                continue
            quality[i, column[model]] = float(outcome["quality"])
            cost[i, column[model]] = float(outcome.get("cost") or 0.0)
    return RoutingDataset(name, tuple(ids), tuple(prompts), tuple(categories), models,
                          quality, cost)


def load_outcomes(path: Path | str, name: str | None = None) -> RoutingDataset:
    """Read a routing-outcomes JSONL(.gz) file."""
    file = Path(path)
    if not file.exists():
        raise ConfigError([f"routing data not found: {file}"])
    rows = (json.loads(line) for line in _open_text(file) if line.strip())
    label = name or file.name.split(".jsonl")[0]
    dataset = parse_rows(rows, label)
    if len(dataset) == 0:
        raise ConfigError([f"routing data is empty: {file}"])
    return dataset


def prompt_bucket(prompt: str, salt: str = "switchyard") -> float:
    """A stable pseudo-random number in [0, 1) derived from the prompt text only."""
    digest = hashlib.sha256(f"{salt}\x00{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_by_prompt_hash(
    dataset: RoutingDataset, test_fraction: float = 0.2, salt: str = "switchyard"
) -> tuple[RoutingDataset, RoutingDataset]:
    """Fixed train/test split by prompt hash: identical prompts always land on the same side."""
    buckets = np.array([prompt_bucket(p, salt) for p in dataset.prompts])
    test = np.flatnonzero(buckets < test_fraction)
    train = np.flatnonzero(buckets >= test_fraction)
    return (dataset.subset(train, f"{dataset.name}.train"),
            dataset.subset(test, f"{dataset.name}.test"))


def without_prompts_in(dataset: RoutingDataset, other: RoutingDataset) -> RoutingDataset:
    """Rows of `dataset` whose prompt text does not occur in `other` (a leak-free test set)."""
    seen = set(other.prompts)
    keep = [i for i, p in enumerate(dataset.prompts) if p not in seen]
    return dataset.subset(keep, f"{dataset.name}.leakfree")


def kfold_indices(n: int, folds: int, seed: int) -> list[tuple[IndexArray, IndexArray]]:
    """Shuffled K-fold (train_idx, valid_idx) pairs."""
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, folds)
    return [
        (np.sort(np.concatenate([p for j, p in enumerate(parts) if j != k])), np.sort(parts[k]))
        for k in range(folds)
    ]
