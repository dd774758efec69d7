"""`domain`: which of the 14 MMLU-Pro categories a request is about (plus custom categories).

A softmax head over the MiniLM embedding of the last user message (multiple-choice options
stripped), trained by `switchyard train-signal domain`; the bundled weights are loaded at start.
Custom categories are recognised by similarity to their configured examples and need no training.
"""

from __future__ import annotations

import time

import numpy as np

from switchyard.signals.base import SignalContext, register_signal
from switchyard.signals.datasets import question_text
from switchyard.signals.heads import ClassifierHead, bundled_weights
from switchyard.signals.semantic import (
    check_window,
    request_text,
    resolved,
    shared_embeddings,
)
from switchyard.signals.semantic_config import DomainSignalConfig
from switchyard.types import RequestView, SignalResult

DOMAIN_WEIGHTS = "domain.npz"
DOMAIN_CATEGORIES = (
    "biology", "business", "chemistry", "computer science", "economics", "engineering",
    "health", "history", "law", "math", "other", "philosophy", "physics", "psychology",
)  # fmt: skip


def domain_text(text: str) -> str:
    return question_text(request_text(text))


@register_signal("domain", DomainSignalConfig)
class DomainSignal:
    def __init__(self, config: DomainSignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.config = config
        path = (
            context.resolve(config.weights) if config.weights else bundled_weights(DOMAIN_WEIGHTS)
        )
        self.head = ClassifierHead.load(path)
        self._embeddings = shared_embeddings(context)
        check_window(self.head.meta, self._embeddings, f"domain head {path.name}")
        self._custom_names: list[str] = []
        self._custom_thresholds: list[float] = []
        owners: list[int] = []
        examples: list[str] = []
        for index, category in enumerate(config.custom_categories):
            self._custom_names.append(category.name)
            self._custom_thresholds.append(category.threshold)
            owners.extend([index] * len(category.examples))
            examples.extend(request_text(example) for example in category.examples)
        self._custom_owner = np.array(owners, dtype=np.int64)
        self._custom_vectors = self._embeddings.submit(lambda model: model.embed_batch(examples))

    async def ready(self) -> None:
        """Wait until the model is loaded and the custom examples are embedded."""
        await resolved(self._custom_vectors)

    async def evaluate(self, view: RequestView) -> SignalResult:
        started = time.perf_counter()
        text = domain_text(view.last_user_text)
        if not text:
            return SignalResult(self.name, latency_ms=_since(started))
        vector = (await self._embeddings.embed_for_request(view.request_id, [text]))[0]
        probabilities = self.head.probabilities(vector[None, :])[0]
        order = np.argsort(probabilities)[::-1]
        details = {self.head.labels[i]: float(probabilities[i]) for i in order[:3]}
        best = int(order[0])
        label, score = self.head.labels[best], float(probabilities[best])
        custom = await self._best_custom(vector)
        if custom is not None:
            label, score = custom
            details[label] = score
        elif score < self.config.min_confidence:
            return SignalResult(self.name, score=score, details=details, latency_ms=_since(started))
        return SignalResult(
            self.name,
            labels=(label,),
            score=score,
            confidence=score,
            details=details,
            latency_ms=_since(started),
        )

    async def _best_custom(self, vector: np.typing.NDArray[np.float32]) -> tuple[str, float] | None:
        if not self._custom_names:
            return None
        similarities = (await resolved(self._custom_vectors)) @ vector
        best: tuple[str, float] | None = None
        for index, name in enumerate(self._custom_names):
            top = float(similarities[self._custom_owner == index].max())
            if top >= self._custom_thresholds[index] and (best is None or top > best[1]):
                best = (name, top)
        return best


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
