"""`jailbreak`: hierarchical prompt-attack guard (jailbreak, prompt injection, harmful request).

Stage 1, every request: a binary head over the MiniLM embedding of every user turn (all turns
are embedded in one batch and shared with the other semantic signals); the conversation's score
is the maximum over its turns. Stage 2, only when stage 1 flags the request: a detail head
classifies the worst turn into jailbreak / prompt_injection / harmful_request. This mirrors the
hierarchical content-safety design of the vLLM Semantic Router: a cheap binary check always, the
detail classification only on flagged traffic.
"""

from __future__ import annotations

import time

import numpy as np

from switchyard.signals.base import SignalContext, register_signal
from switchyard.signals.heads import ClassifierHead, bundled_weights
from switchyard.signals.semantic import check_window, request_text, shared_embeddings
from switchyard.signals.semantic_config import JailbreakSignalConfig
from switchyard.types import RequestView, SignalResult

BINARY_WEIGHTS = "jailbreak.npz"
DETAIL_WEIGHTS = "jailbreak_detail.npz"
DEFAULT_THRESHOLD = 0.5


def scored_turns(view: RequestView, include_system: bool) -> list[str]:
    roles = ("user", "system", "developer") if include_system else ("user",)
    turns = [request_text(m.text) for m in view.messages if m.role in roles]
    if not view.messages:
        turns = [request_text(view.prompt)]
    return [turn for turn in dict.fromkeys(turns) if turn]


@register_signal("jailbreak", JailbreakSignalConfig)
class JailbreakSignal:
    def __init__(self, config: JailbreakSignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.config = config
        path = (
            context.resolve(config.weights) if config.weights else bundled_weights(BINARY_WEIGHTS)
        )
        self.binary = ClassifierHead.load(path)
        detail_path = path.with_name(path.stem + "_detail.npz")
        self.detail = ClassifierHead.load(detail_path) if config.detail else None
        trained = float(self.binary.meta.get("threshold", DEFAULT_THRESHOLD))
        self.threshold = config.threshold if config.threshold is not None else trained
        self._embeddings = shared_embeddings(context)
        check_window(self.binary.meta, self._embeddings, f"jailbreak head {path.name}")

    async def ready(self) -> None:
        await self._embeddings.ready()

    async def evaluate(self, view: RequestView) -> SignalResult:
        started = time.perf_counter()
        turns = scored_turns(view, self.config.include_system)
        if not turns:
            return SignalResult(self.name, value=0.0, latency_ms=_since(started))
        vectors = await self._embeddings.embed_for_request(view.request_id, turns)
        scores = self.binary.probabilities(vectors)
        worst = int(np.argmax(scores))
        score = float(scores[worst])
        details = {"turns": float(len(turns)), "worst_turn": float(worst)}
        if score < self.threshold:
            return SignalResult(
                self.name, score=score, value=score, details=details, latency_ms=_since(started)
            )
        category = "jailbreak"
        if self.detail is not None:  # stage 2: only for flagged requests
            probabilities = self.detail.probabilities(vectors[worst : worst + 1])[0]
            category = self.detail.labels[int(np.argmax(probabilities))]
            labelled = zip(self.detail.labels, probabilities, strict=True)
            details.update({label: float(p) for label, p in labelled})
        return SignalResult(
            self.name,
            labels=(category,),
            score=score,
            value=score,
            confidence=score,
            details=details,
            latency_ms=_since(started),
        )


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
