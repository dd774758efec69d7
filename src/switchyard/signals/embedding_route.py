"""`embedding`: named routes defined by example utterances; no training needed.

Each route's score is the best cosine similarity (or the similarity to the centroid) between the
last user message and the route's examples. A route fires when its score reaches its threshold
and the message is not closer to one of the route's negative examples. With `exclusive: true`
the routes form a mutually exclusive group: a softmax over their scores, and at most the best
route fires.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from switchyard.embed.base import Vectors, l2_normalise
from switchyard.embed.minilm import MiniLMEmbedder
from switchyard.signals.base import SignalContext, register_signal
from switchyard.signals.semantic import request_text, resolved, shared_embeddings
from switchyard.signals.semantic_config import EmbeddingSignalConfig
from switchyard.types import RequestView, SignalResult


@dataclass(frozen=True)
class RouteIndex:
    """Per route: its example vectors (or centroid) and its negative example vectors."""

    positives: list[Vectors]
    negatives: list[Vectors]


def build_route_index(config: EmbeddingSignalConfig, model: MiniLMEmbedder) -> RouteIndex:
    positives: list[Vectors] = []
    negatives: list[Vectors] = []
    for route in config.routes:
        vectors = model.embed_batch([request_text(text) for text in route.examples])
        if config.aggregate == "centroid":
            vectors = l2_normalise(vectors.mean(axis=0, keepdims=True))
        positives.append(vectors)
        negatives.append(model.embed_batch([request_text(t) for t in route.negative_examples]))
    return RouteIndex(positives, negatives)


def route_scores(index: RouteIndex, vector: Vectors) -> tuple[Vectors, Vectors]:
    """Best positive and best negative similarity per route (negatives: -1 when none)."""
    positive = np.array([float((p @ vector).max()) for p in index.positives], dtype=np.float32)
    negative = np.array(
        [float((n @ vector).max()) if len(n) else -1.0 for n in index.negatives], dtype=np.float32
    )
    return positive, negative


def softmax(values: npt.NDArray[np.float32], temperature: float) -> npt.NDArray[np.float32]:
    scaled = (values - values.max()) / temperature
    exp = np.exp(scaled.astype(np.float64))
    result: npt.NDArray[np.float32] = (exp / exp.sum()).astype(np.float32)
    return result


@register_signal("embedding", EmbeddingSignalConfig)
class EmbeddingRouteSignal:
    def __init__(self, config: EmbeddingSignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.config = config
        self._embeddings = shared_embeddings(context)
        self._index = self._embeddings.submit(lambda model: build_route_index(config, model))
        self._names = [route.name for route in config.routes]
        self._thresholds = np.array(
            [r.threshold if r.threshold is not None else config.threshold for r in config.routes],
            dtype=np.float32,
        )

    async def ready(self) -> None:
        await resolved(self._index)

    async def evaluate(self, view: RequestView) -> SignalResult:
        started = time.perf_counter()
        text = request_text(view.last_user_text)
        if not text:
            return SignalResult(self.name, latency_ms=(time.perf_counter() - started) * 1000)
        vector = (await self._embeddings.embed_for_request(view.request_id, [text]))[0]
        positive, negative = route_scores(await resolved(self._index), vector)
        eligible = (positive >= self._thresholds) & (positive > negative)
        details = {name: float(score) for name, score in zip(self._names, positive, strict=True)}
        if self.config.exclusive:
            probabilities = softmax(positive, self.config.temperature)
            best = int(np.argmax(positive))
            labels = (self._names[best],) if eligible[best] else ()
            confidence = float(probabilities[best])
        else:
            order = np.argsort(positive)[::-1]
            labels = tuple(self._names[i] for i in order if eligible[i])
            confidence = 1.0
        return SignalResult(
            self.name,
            labels=labels,
            score=float(positive.max()),
            confidence=confidence,
            details=details,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
