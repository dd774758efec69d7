"""The serving side: the `learned_router` signal picks different models for prompts the
artifact scores differently, reports per-candidate predictions, and calibrates a cost target."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from tests.fakes.cache_embedder import HashingEmbedder

from switchyard.learn.artifacts import save_router
from switchyard.learn.datasets import RoutingDataset
from switchyard.learn.features import TRAIN_EMBED_TOKENS, build_features, last_block
from switchyard.learn.training import fit_router
from switchyard.routing.learned import (
    LearnedRouter,
    LearnedRouterSignal,
    LearnedRouterSignalConfig,
)
from switchyard.signals.base import SIGNALS, SignalContext
from switchyard.signals.semantic import SharedEmbeddings, shared_key
from switchyard.types import ChatMessage, RequestView

MATH = "solve the integral of the polynomial number {i} and show the derivative"
CHAT = "say hello and tell a friendly joke to my friend number {i}"


def outcomes(feature_set: str) -> tuple[RoutingDataset, np.ndarray]:
    """The cheap model answers chat well and fails maths; the strong model does both."""
    prompts = tuple([MATH.format(i=i) for i in range(80)] + [CHAT.format(i=i) for i in range(80)])
    cheap = np.array([0.0] * 80 + [1.0] * 80)
    quality = np.stack([cheap, np.ones(160)], axis=1)
    cost = np.tile([1e-5, 1e-3], (160, 1))
    data = RoutingDataset("toy", prompts, prompts, tuple([None] * 160), ("cheap", "strong"),
                          quality, cost)
    embedder = HashingEmbedder(dim=64)
    return data, build_features(prompts, feature_set, embedder.embed_batch)


def artifact(tmp_path: Path, kind: str = "knn", feature_set: str = "full") -> Path:
    data, features = outcomes(feature_set)
    router = fit_router(kind, data, features, {}, seed=0, feature_set=feature_set)
    router.extra_arrays["calibration.features"] = features.astype(np.float16)
    router.extra_arrays["calibration.prompt_chars"] = np.array([len(p) for p in data.prompts])
    return save_router(router, tmp_path / f"{kind}.npz")


def context() -> SignalContext:
    shared = SignalContext()
    fake = SharedEmbeddings(model=HashingEmbedder(dim=64))  # type: ignore[arg-type]
    shared.resources[shared_key(TRAIN_EMBED_TOKENS, "fp32")] = fake  # what artifacts train on
    return shared


def view(text: str, request_id: str) -> RequestView:
    return RequestView(request_id, "auto", messages=(ChatMessage("user", text),))


@pytest.mark.parametrize("kind", ["knn", "mlp", "ensemble"])
async def test_signal_routes_prompts_the_artifact_scores_differently(tmp_path: Path,
                                                                     kind: str) -> None:
    config = LearnedRouterSignalConfig(name="router", type="learned_router",
                                       artifact=str(artifact(tmp_path, kind)), lam=0.1)
    signal = SIGNALS["learned_router"][1](config, context())
    maths = await signal.evaluate(view("solve the integral of this polynomial", "r1"))
    chat = await signal.evaluate(view("say hello to my friend with a joke", "r2"))
    assert maths.labels == ("strong",)
    assert chat.labels == ("cheap",)
    assert set(maths.details) == {"cheap.quality", "cheap.cost", "strong.quality", "strong.cost"}
    assert maths.details["cheap.quality"] < 0.5 < chat.details["cheap.quality"]
    assert maths.value == pytest.approx(maths.details["strong.cost"])


async def test_quality_target_and_candidates(tmp_path: Path) -> None:
    path = artifact(tmp_path)
    only_cheap = LearnedRouterSignal(
        LearnedRouterSignalConfig(name="r", type="learned_router", artifact=str(path),
                                  quality_target=0.9, candidates=["cheap"]), context())
    result = await only_cheap.evaluate(view("solve the integral of this polynomial", "r3"))
    assert result.labels == ("cheap",) and "strong.quality" not in result.details
    target = LearnedRouterSignal(
        LearnedRouterSignalConfig(name="r", type="learned_router", artifact=str(path),
                                  quality_target=0.9), context())
    assert (await target.evaluate(view("say hello and a joke", "r4"))).labels == ("cheap",)


async def test_cost_target_is_calibrated_from_the_artifact(tmp_path: Path) -> None:
    path = artifact(tmp_path)
    cheap_only = LearnedRouterSignal(
        LearnedRouterSignalConfig(name="r", type="learned_router", artifact=str(path),
                                  max_cost_per_request=2e-5), context())
    generous = LearnedRouterSignal(
        LearnedRouterSignalConfig(name="r", type="learned_router", artifact=str(path),
                                  max_cost_per_request=1e-3), context())
    maths = view("solve the integral of this polynomial", "r5")
    assert (await cheap_only.evaluate(maths)).labels == ("cheap",)
    assert (await generous.evaluate(maths)).labels == ("strong",)


async def test_full_plus_last_features_embed_the_last_paragraph(tmp_path: Path) -> None:
    path = artifact(tmp_path, "knn", "full+last")
    router = LearnedRouter.load(path)
    text = ("Here are some examples of questions.\n\n"
            "solve the integral of the polynomial now and show the derivative step by step")
    assert router.texts_to_embed(text) == [text, last_block(text)]
    assert router.texts_to_embed("one paragraph only") == ["one paragraph only"]
    signal = LearnedRouterSignal(
        LearnedRouterSignalConfig(name="r", type="learned_router", artifact=str(path), lam=0.1),
        context())
    assert (await signal.evaluate(view(text, "r6"))).labels == ("strong",)


def test_config_needs_exactly_one_policy() -> None:
    with pytest.raises(ValidationError):
        LearnedRouterSignalConfig(name="r", type="learned_router", artifact="a.npz")
    with pytest.raises(ValidationError):
        LearnedRouterSignalConfig(name="r", type="learned_router", artifact="a.npz", lam=0.1,
                                  quality_target=0.5)


def test_unknown_candidate_is_a_config_error(tmp_path: Path) -> None:
    from switchyard.errors import ConfigError

    with pytest.raises(ConfigError, match="not in the artifact"):
        LearnedRouter.load(artifact(tmp_path), ["gpt-9"])


def test_artifact_loads_fast(tmp_path: Path) -> None:
    path = artifact(tmp_path, "ensemble")
    start = time.perf_counter()
    LearnedRouter.load(path)
    assert time.perf_counter() - start < 1.0


def test_serving_features_match_offline_features_for_every_feature_set(tmp_path: Path) -> None:
    """The gateway rebuilds exactly the feature row the router was trained on."""
    embedder = HashingEmbedder(dim=64)
    text = ("Worked example: 2 + 2 = 4.\n\n"
            "Tom has 12 apples and buys 30% more at $1.50 each. How many apples does he have?")
    for feature_set in ("full", "full+last", "full+last+stats", "full+last+stats+ngrams"):
        path = artifact(tmp_path, "knn", feature_set)
        router = LearnedRouter.load(path)
        vectors = embedder.embed_batch(router.texts_to_embed(text))
        served = router.features_from(vectors, text)
        offline = build_features([text], feature_set, embedder.embed_batch)[0]
        assert served.shape == offline.shape
        np.testing.assert_allclose(served, offline, atol=1e-6)
        assert router.predict(served, [len(text)])[0].shape == (1, 2)


async def test_the_signal_embeds_the_way_its_artifact_was_trained(tmp_path: Path) -> None:
    from switchyard.embed.minilm import INT8_MODEL_ID
    from switchyard.learn.artifacts import load_router
    from switchyard.routing.learned import embedding_of

    path = artifact(tmp_path)
    assert embedding_of(load_router(path)) == (TRAIN_EMBED_TOKENS, "fp32")  # older artifacts
    router = load_router(path)
    router.embedder_id, router.meta["embed_max_tokens"] = INT8_MODEL_ID, 128
    int8_path = save_router(router, tmp_path / "int8.npz")
    assert embedding_of(load_router(int8_path)) == (128, "int8")

    shared = SignalContext()
    fp32 = SharedEmbeddings(model=HashingEmbedder(dim=64))  # type: ignore[arg-type]
    int8 = SharedEmbeddings(model=HashingEmbedder(dim=64))  # type: ignore[arg-type]
    shared.resources[shared_key(TRAIN_EMBED_TOKENS, "fp32")] = fp32
    shared.resources[shared_key(128, "int8")] = int8
    for file, expected in ((path, fp32), (int8_path, int8)):
        config = LearnedRouterSignalConfig(name="r", type="learned_router", artifact=str(file),
                                           lam=0.0)
        signal = LearnedRouterSignal(config, shared)
        assert signal._embeddings is expected
