"""A learned decision inside the gateway: the artifact's scores pick the model per prompt."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import StartFake, StartGateway
from tests.fakes.harness import make_config

from switchyard.embed.minilm import MiniLMEmbedder
from switchyard.learn.artifacts import save_router
from switchyard.learn.datasets import RoutingDataset
from switchyard.learn.features import build_features
from switchyard.learn.training import fit_router

MATH = "solve the integral of the polynomial number {i} and show the derivative"
CHAT = "say hello and tell a friendly joke to my friend number {i}"


def train_artifact(path: Path) -> Path:
    """`cheap` answers chat well and fails maths; `strong` does both at 100x the cost."""
    prompts = tuple([MATH.format(i=i) for i in range(60)] + [CHAT.format(i=i) for i in range(60)])
    quality = np.stack([np.array([0.0] * 60 + [1.0] * 60), np.ones(120)], axis=1)
    cost = np.tile([1e-5, 1e-3], (120, 1))
    data = RoutingDataset("toy", prompts, prompts, tuple([None] * 120), ("cheap", "strong"),
                          quality, cost)
    features = build_features(prompts, "full", MiniLMEmbedder().embed_batch)
    router = fit_router("knn", data, features, {}, seed=0, feature_set="full")
    return save_router(router, path)


def signal_form(artifact: Path) -> dict[str, Any]:
    return {
        "signals": [{"name": "router", "type": "learned_router", "artifact": str(artifact),
                     "lam": 0.1, "timeout_s": 30}],
        "decisions": [{"name": "learned", "when": {"signal": "router"},
                       "models_from_signal": "router", "models": ["cheap"]}],
        "default": "cheap",
    }


def strategy_form(artifact: Path) -> dict[str, Any]:
    strategy = {"type": "learned", "artifact": str(artifact), "candidates": ["cheap", "strong"],
                "lam": 0.1, "timeout_s": 30}
    return {"decisions": [{"name": "learned", "strategy": strategy, "models": ["cheap"]}],
            "default": "cheap"}


@pytest.mark.parametrize("form", [signal_form, strategy_form], ids=["signal", "strategy"])
async def test_learned_decision_routes_by_predicted_quality_and_cost(
    fake: StartFake, gateway: StartGateway, records_path: Path, tmp_path: Path,
    form: Callable[[Path], dict[str, Any]],
) -> None:
    cheap, strong = await fake("cheap-1"), await fake("strong-1")
    routing = form(train_artifact(tmp_path / "router.npz"))
    config = make_config(records_path, {"cheap": [("cheap-1", cheap.url)],
                                        "strong": [("strong-1", strong.url)]}, routing=routing)
    gw = await gateway(config)

    maths = await gw.chat("auto", "solve the integral of this polynomial and its derivative")
    chat = await gw.chat("auto", "say hello to my friend with a friendly joke")

    assert maths.status_code == chat.status_code == 200
    assert maths.headers["x-switchyard-decision"] == "learned"
    assert maths.headers["x-switchyard-model"] == "strong"
    assert chat.headers["x-switchyard-model"] == "cheap"
    predictions = dict(
        item.split("=") for item in maths.headers["x-switchyard-predictions"].split(",")
    )
    assert set(predictions) == {"cheap.quality", "cheap.cost", "strong.quality", "strong.cost"}
    assert float(predictions["cheap.quality"]) < float(predictions["strong.quality"])
    assert len(strong.inference_requests()) == 1 and len(cheap.inference_requests()) == 1
