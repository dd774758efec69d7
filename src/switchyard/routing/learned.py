"""Serving side of learned routing: load a trained artifact, score candidates, pick one.

`LearnedRouter.choose(embedding, prompt_chars, ...)` is pure numpy over one embedding (a few
hundred microseconds at most); the `learned_router` signal wraps it for the gateway: it embeds
the last user message with the configuration's shared embedder and reports

    labels = (chosen_model,)   score = predicted quality of the choice
    value  = predicted cost (USD) of the choice
    details = {"<model>.quality": q, "<model>.cost": c, ...} for every candidate

so a decision can route to `models_from_signal: NAME` and the trace shows the predictions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from switchyard.errors import ConfigError
from switchyard.learn.artifacts import TrainedRouter, load_router
from switchyard.learn.calibration import calibrate_cost, calibrate_share
from switchyard.learn.features import TRAIN_EMBED_TOKENS, last_block, text_features
from switchyard.learn.signal_config import LearnedRouterSignalConfig
from switchyard.signals.base import SignalContext, register_signal
from switchyard.types import RequestView, SignalResult

if TYPE_CHECKING:
    from switchyard.embed.minilm_graph import Precision


@dataclass(frozen=True)
class RouteChoice:
    model: str
    predictions: dict[str, tuple[float, float]]  # model -> (predicted quality, predicted cost)


class LearnedRouter:
    """A loaded artifact restricted to the configured candidate models."""

    def __init__(self, trained: TrainedRouter, candidates: Sequence[str] | None = None) -> None:
        self.trained = trained
        names = list(candidates) if candidates else list(trained.models)
        unknown = [m for m in names if m not in trained.models]
        if unknown:
            raise ConfigError([f"learned router: candidates not in the artifact: {unknown}; "
                               f"it knows {list(trained.models)}"])
        self.candidates = tuple(names)
        self._columns = np.array([trained.models.index(m) for m in names], dtype=np.int64)

    @classmethod
    def load(cls, path: Path | str, candidates: Sequence[str] | None = None) -> LearnedRouter:
        return cls(load_router(path), candidates)

    def texts_to_embed(self, text: str) -> list[str]:
        """The texts whose embeddings make this router's features (1 or 2 per request)."""
        if self.trained.feature_set == "full":
            return [text]
        tail = last_block(text)
        return [text] if tail == text else [text, tail]

    def features_from(self, vectors: npt.NDArray[np.floating],
                      text: str) -> npt.NDArray[np.float64]:
        """One feature row from the embeddings of `texts_to_embed(text)`, in that order."""
        rows = np.asarray(vectors, dtype=np.float64)
        feature_set = self.trained.feature_set
        if feature_set == "full":
            return np.asarray(rows[0], dtype=np.float64)
        return np.concatenate([rows[0], rows[-1], text_features([text], feature_set)[0]])

    def predict(self, features: npt.NDArray[np.floating],
                prompt_chars: Sequence[int] | npt.NDArray[np.floating],
                ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Predicted quality and cost [n, len(candidates)] for a batch of feature rows."""
        rows = np.atleast_2d(np.asarray(features, dtype=np.float64))
        chars = np.asarray(prompt_chars, dtype=np.float64).reshape(-1)
        quality, cost = self.trained.predict(rows, chars)
        return quality[:, self._columns], cost[:, self._columns]

    def choose(self, features: npt.NDArray[np.floating], prompt_chars: int, *,
               lam: float | None = None, target: float | None = None) -> RouteChoice:
        """One request (features = `features_from(...)`): λ trade-off, or the cheapest
        candidate predicted to clear `target`."""
        quality, cost = self.predict(features, [prompt_chars])
        index = int(self.trained.choose(quality, cost, lam=lam, target=target)[0])
        predictions = {m: (float(quality[0, j]), float(cost[0, j]))
                       for j, m in enumerate(self.candidates)}
        return RouteChoice(self.candidates[index], predictions)

    def calibrate(self, features: npt.NDArray[np.floating], prompt_chars: Sequence[int], *,
                  max_cost: float | None = None, max_share: float | None = None,
                  share_model: str | None = None) -> float:
        """λ meeting an average-cost or one-model-share target on a sample of prompts."""
        quality, cost = self.predict(features, prompt_chars)
        ref = self.trained.reference_cost
        if max_cost is not None:
            return calibrate_cost(quality, cost, ref, max_cost).lam
        if max_share is None or share_model is None:
            raise ValueError("give max_cost, or max_share with share_model")
        column = self.candidates.index(share_model)
        return calibrate_share(quality, cost, ref, column, max_share, share_model).lam


def calibrated_lambda(router: LearnedRouter, max_cost: float) -> float:
    """λ for a cost target from the calibration sample stored in the artifact's meta."""
    embeddings = router.trained.extra_arrays.get("calibration.features")
    chars = router.trained.extra_arrays.get("calibration.prompt_chars")
    if embeddings is None or chars is None:
        raise ConfigError(["learned router: artifact has no calibration sample; "
                           "use `lam` or `quality_target`, or retrain it with `switchyard train`"])
    return router.calibrate(embeddings, [int(c) for c in chars], max_cost=max_cost)


def embedding_of(trained: TrainedRouter) -> tuple[int, Precision]:
    """Token window and MiniLM precision a router's features were embedded with (artifacts
    written before this was recorded were trained on `TRAIN_EMBED_TOKENS` fp32 embeddings)."""
    from switchyard.embed.minilm import INT8_MODEL_ID

    tokens = int(trained.meta.get("embed_max_tokens", TRAIN_EMBED_TOKENS))
    precision: Precision = "int8" if trained.embedder_id == INT8_MODEL_ID else "fp32"
    return tokens, precision


@register_signal("learned_router", LearnedRouterSignalConfig)
class LearnedRouterSignal:
    """The gateway-facing wrapper: embed the last user message, score candidates, choose."""

    def __init__(self, config: LearnedRouterSignalConfig, context: SignalContext) -> None:
        from switchyard.signals.semantic import shared_embeddings

        self.name = config.name
        self.config = config
        self.router = LearnedRouter.load(context.resolve(config.artifact),
                                         config.candidates or None)
        self.lam = config.lam
        if config.max_cost_per_request is not None:
            self.lam = calibrated_lambda(self.router, config.max_cost_per_request)
        # the embeddings the artifact was trained on: same token window, same precision
        tokens, precision = embedding_of(self.router.trained)
        self._embeddings = shared_embeddings(context, tokens, precision)

    async def evaluate(self, view: RequestView) -> SignalResult:
        from switchyard.signals.semantic import request_text

        started = time.perf_counter()
        text = request_text(view.last_user_text)
        texts = self.router.texts_to_embed(text)
        vectors = await self._embeddings.embed_for_request(view.request_id, texts)
        features = self.router.features_from(vectors, text)
        choice = self.router.choose(features, len(text), lam=self.lam,
                                    target=self.config.quality_target)
        details: dict[str, float] = {}
        for model, (quality, cost) in choice.predictions.items():
            details[f"{model}.quality"] = quality
            details[f"{model}.cost"] = cost
        quality, cost = choice.predictions[choice.model]
        return SignalResult(self.name, labels=(choice.model,), score=quality, value=cost,
                            confidence=quality, details=details,
                            latency_ms=(time.perf_counter() - started) * 1000.0)


__all__ = ["LearnedRouter", "LearnedRouterSignal", "LearnedRouterSignalConfig", "RouteChoice",
           "calibrated_lambda"]
