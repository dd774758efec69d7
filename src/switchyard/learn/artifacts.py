"""Trained routers and their on-disk form: one `.npz` (arrays only) with a JSON header inside.

No pickle anywhere: `np.load(..., allow_pickle=False)`; the header is a UTF-8 JSON document
stored as a uint8 array under the key `__header__`. The format is versioned.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from switchyard.errors import ConfigError
from switchyard.learn.routers import PREDICTOR_LOADERS
from switchyard.learn.routers.base import (
    BoolArray,
    FloatArray,
    IndexArray,
    LinearCostModel,
    QualityPredictor,
    choose_by_lambda,
    choose_by_threshold,
)

FORMAT = "switchyard.learned_router"
FORMAT_VERSION = 1
_HEADER_KEY = "__header__"


@dataclass
class TrainedRouter:
    """A quality predictor plus a cost model over a fixed, ordered model list."""

    kind: str
    models: tuple[str, ...]
    predictor: QualityPredictor
    cost_model: LinearCostModel
    reference_cost: float
    embedder_id: str = ""
    feature_set: str = "full"
    meta: dict[str, Any] = field(default_factory=dict)
    extra_arrays: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)

    def predict(self, features: FloatArray,
                prompt_chars: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Predicted quality and cost, both [n, n_models]."""
        return self.predictor.predict(features), self.cost_model.predict(prompt_chars)

    def choose(self, pred_quality: FloatArray, pred_cost: FloatArray, *,
               lam: float | None = None, target: float | None = None,
               available: BoolArray | None = None) -> IndexArray:
        """Column index per row: λ trade-off, or the cheapest model clearing `target`."""
        if (lam is None) == (target is None):
            raise ValueError("give exactly one of lam or target")
        if lam is not None:
            return choose_by_lambda(pred_quality, pred_cost, lam, self.reference_cost, available)
        return choose_by_threshold(pred_quality, pred_cost, float(target or 0.0), available)


def save_router(router: TrainedRouter, path: Path | str) -> Path:
    arrays, params = router.predictor.to_state()
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "kind": router.kind,
        "predictor_kind": router.predictor.kind,
        "predictor_params": params,
        "models": list(router.models),
        "reference_cost": router.reference_cost,
        "embedder_id": router.embedder_id,
        "feature_set": router.feature_set,
        "meta": router.meta,
    }
    payload: dict[str, np.ndarray[Any, Any]] = {f"p.{k}": v for k, v in arrays.items()}
    payload.update({f"x.{k}": v for k, v in router.extra_arrays.items()})
    payload["cost.intercept"] = router.cost_model.intercept
    payload["cost.slope"] = router.cost_model.slope
    payload[_HEADER_KEY] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez_compressed(file, **payload)  # type: ignore[arg-type]
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def load_router(path: Path | str) -> TrainedRouter:
    source = Path(path)
    if not source.is_file():
        raise ConfigError([f"router artifact not found: {source}"])
    try:
        with np.load(source, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise ConfigError([f"{source}: not a router artifact ({exc})"]) from exc
    if _HEADER_KEY not in arrays:
        raise ConfigError([f"{source}: not a router artifact (no header)"])
    header = json.loads(arrays.pop(_HEADER_KEY).tobytes().decode())
    if header.get("format") != FORMAT:
        raise ConfigError([f"{source}: unknown format {header.get('format')!r}"])
    if int(header.get("version", 0)) > FORMAT_VERSION:
        raise ConfigError([f"{source}: format version {header['version']} is newer than "
                           f"this switchyard ({FORMAT_VERSION})"])
    loader = PREDICTOR_LOADERS.get(str(header["predictor_kind"]))
    if loader is None:
        raise ConfigError([f"{source}: unknown predictor {header['predictor_kind']!r}"])
    predictor_arrays = {k[2:]: v for k, v in arrays.items() if k.startswith("p.")}
    cost_model = LinearCostModel(np.asarray(arrays["cost.intercept"], dtype=np.float64),
                                 np.asarray(arrays["cost.slope"], dtype=np.float64))
    return TrainedRouter(
        kind=str(header["kind"]),
        models=tuple(header["models"]),
        predictor=loader(predictor_arrays, dict(header["predictor_params"])),
        cost_model=cost_model,
        reference_cost=float(header["reference_cost"]),
        embedder_id=str(header.get("embedder_id", "")),
        feature_set=str(header.get("feature_set", "full")),
        meta=dict(header.get("meta", {})),
        extra_arrays={k[2:]: v for k, v in arrays.items() if k.startswith("x.")},
    )
