"""`complexity`: easy / medium / hard by contrastive similarity to hard vs easy exemplars.

value = mean of the 3 best similarities to hard exemplars - the same for easy exemplars, using
the shared MiniLM embedding of the last user message. Thresholds come from config; see
docs/signals.md ("Tuning complexity") for how to pick them from your own traffic.
"""

from __future__ import annotations

import time

import numpy as np

from switchyard.embed.base import Vectors
from switchyard.signals.base import SignalContext, register_signal
from switchyard.signals.semantic import request_text, resolved, shared_embeddings
from switchyard.signals.semantic_config import ComplexitySignalConfig
from switchyard.types import RequestView, SignalResult

TOP_K = 3

HARD_EXEMPLARS = (
    "Prove that there are infinitely many primes of the form 4k+3.",
    "Derive the closed-form solution of the heat equation on a finite rod with mixed boundary "
    "conditions and discuss convergence of the series.",
    "Design a distributed, fault-tolerant rate limiter for a multi-region API and analyse its "
    "consistency trade-offs.",
    "Implement a lock-free concurrent hash map in C++ and explain the memory-ordering choices.",
    "Analyse the time complexity of this dynamic programming algorithm and prove its correctness.",
    "Compare the legal reasoning of two landmark constitutional cases and evaluate their "
    "long-term implications.",
    "Write a compiler pass that performs loop-invariant code motion on an SSA intermediate "
    "representation.",
    "Explain the mechanism of a multi-step organic synthesis and justify the stereochemistry.",
    "Given a noisy time series, build, validate and compare three forecasting models and "
    "explain which assumptions each violates.",
    "Debug this race condition in an asynchronous Rust service that only appears under load.",
    "Formulate the optimisation problem as a linear program, find its dual and interpret the "
    "shadow prices.",
    "Critically evaluate the argument for moral realism and construct the strongest objection.",
)

EASY_EXEMPLARS = (
    "What is the capital of France?",
    "Say hello.",
    "What is 2 + 2?",
    "Translate 'thank you' into Spanish.",
    "What day comes after Monday?",
    "Give me a synonym for happy.",
    "How many legs does a spider have?",
    "What colour is the sky?",
    "Tell me a short joke.",
    "Who wrote Romeo and Juliet?",
    "Convert 5 kilometres to metres.",
    "Spell the word necessary.",
)


def contrastive_value(vector: Vectors, hard: Vectors, easy: Vectors) -> float:
    def top_mean(matrix: Vectors) -> float:
        similarities = np.sort(matrix @ vector)[::-1][:TOP_K]
        return float(similarities.mean())

    return top_mean(hard) - top_mean(easy)


@register_signal("complexity", ComplexitySignalConfig)
class ComplexitySignal:
    def __init__(self, config: ComplexitySignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.config = config
        hard = [request_text(t) for t in (config.hard_examples or HARD_EXEMPLARS)]
        easy = [request_text(t) for t in (config.easy_examples or EASY_EXEMPLARS)]
        self._embeddings = shared_embeddings(context)
        self._hard = self._embeddings.submit(lambda model: model.embed_batch(hard))
        self._easy = self._embeddings.submit(lambda model: model.embed_batch(easy))

    def level(self, value: float) -> str:
        if value >= self.config.hard_threshold:
            return "hard"
        if value <= self.config.easy_threshold:
            return "easy"
        return "medium"

    async def ready(self) -> None:
        await resolved(self._hard)
        await resolved(self._easy)

    async def evaluate(self, view: RequestView) -> SignalResult:
        started = time.perf_counter()
        text = request_text(view.last_user_text)
        if not text:
            return SignalResult(self.name, latency_ms=(time.perf_counter() - started) * 1000)
        vector = (await self._embeddings.embed_for_request(view.request_id, [text]))[0]
        value = contrastive_value(vector, await resolved(self._hard), await resolved(self._easy))
        return SignalResult(
            self.name,
            labels=(self.level(value),),
            score=value,
            value=value,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
