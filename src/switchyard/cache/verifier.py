"""Hit verifier: is a cached question (candidate) really the same question as the query?

Cosine similarity of sentence embeddings alone confuses "same topic" with "same question"
(e.g. numbers, entities or a negation that differ). The verifier scores each (query, candidate)
pair from both embeddings (|a-b|, a*b) plus lexical evidence (token, content-word and
character n-gram overlap, length ratio, numbers, capitalised names, question words and
negations that differ) with a small MLP trained offline (`bench/cache.py --train`) on the
tuning half of the labelled question pairs only. Weights ship as an `.npz` (no pickle).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from switchyard.cache.base import Vector

BUILTIN_WEIGHTS = Path(__file__).with_name("verifier_minilm.npz")
Matrix = npt.NDArray[np.float32]

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z0-9]+")
_STOPWORD_TEXT = (
    "a an the is are was were be been being am do does did doing have has had having i me my "
    "we our you your he him his she her it its they them their what which who whom this that "
    "these those of in on at by for with about to from into over under and or but if then "
    "so than too very can could should would will shall may might must how why when where "
    "there here any some all most more much many such s t just not no nor only own same "
    "as up down out off again further once get got"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_QUESTION_WORDS = ("what", "how", "why", "when", "where", "which", "who", "whom", "whose",
                   "is", "are", "can", "do", "does", "should", "will", "would")
_NEGATIONS = frozenset({"not", "no", "never", "without", "don't", "doesn't", "isn't",
                        "aren't", "can't", "cannot", "won't", "shouldn't", "didn't"})
LEXICAL_FEATURES = 19


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _trigrams(text: str) -> set[str]:
    padded = f"  {text} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


@dataclass(frozen=True, slots=True)
class _TextFacts:
    lowered: str
    words: tuple[str, ...]
    content: frozenset[str]
    numbers: frozenset[str]
    names: frozenset[str]
    trigrams: frozenset[str]
    question_words: frozenset[str]
    negated: bool

    @classmethod
    def of(cls, text: str) -> _TextFacts:
        lowered = " ".join(text.lower().split())
        words = tuple(_WORD.findall(lowered))
        names = frozenset(m.lower() for m in _CAPITALISED.findall(text)[1:])
        return cls(
            lowered=lowered, words=words,
            content=frozenset(w for w in words if w not in _STOPWORDS),
            numbers=frozenset(_NUMBER.findall(text)), names=names,
            trigrams=frozenset(_trigrams(lowered)),
            question_words=frozenset(w for w in words[:6] if w in _QUESTION_WORDS),
            negated=any(w in _NEGATIONS for w in words),
        )


def lexical_features(a: str, b: str) -> list[float]:
    """The `LEXICAL_FEATURES` text features of one pair (symmetric where it matters)."""
    fa, fb = _TextFacts.of(a), _TextFacts.of(b)
    wa, wb = set(fa.words), set(fb.words)
    la, lb = max(len(fa.lowered), 1), max(len(fb.lowered), 1)
    only_a, only_b = fa.content - fb.content, fb.content - fa.content
    return [
        _jaccard(wa, wb),
        _jaccard(set(fa.content), set(fb.content)),
        _jaccard(set(fa.trigrams), set(fb.trigrams)),
        min(la, lb) / max(la, lb),
        math.log1p(abs(len(fa.words) - len(fb.words))),
        min(len(only_a), len(only_b)) / 5.0,
        max(len(only_a), len(only_b)) / 5.0,
        len(fa.numbers ^ fb.numbers) / 2.0,
        float(bool(fa.numbers or fb.numbers) and fa.numbers == fb.numbers),
        len(fa.names ^ fb.names) / 2.0,
        float(bool(fa.names or fb.names) and fa.names == fb.names),
        float(bool(fa.words and fb.words) and fa.words[0] == fb.words[0]),
        _jaccard(set(fa.question_words), set(fb.question_words)),
        float(fa.negated != fb.negated),
        float(fa.lowered == fb.lowered),
        float(fa.words == fb.words),
        math.log1p(len(fa.words) + len(fb.words)) / 4.0,
        float(bool(fa.words and fb.words) and fa.words[-1] == fb.words[-1]),
        len(fa.content & fb.content) / 5.0,
    ]


def pair_features(
    query_text: str, query_vector: Vector, texts: Sequence[str], vectors: Matrix
) -> Matrix:
    """Feature rows for (query, candidate_i): cosine, |a-b|, a*b, lexical features."""
    q = query_vector.astype(np.float32, copy=False)[None, :]
    c = vectors.astype(np.float32, copy=False)
    cosine = (c @ q[0])[:, None]
    lexical = np.asarray([lexical_features(query_text, t) for t in texts], dtype=np.float32)
    lexical = lexical.reshape(len(texts), LEXICAL_FEATURES)
    return np.hstack([cosine, np.abs(c - q), c * q, lexical]).astype(np.float32)


class HitVerifier:
    """Standardise → hidden layers (ReLU) → sigmoid. Loaded from an `.npz` with arrays
    `mean`, `scale`, `W0`, `b0`, `W1`, `b1`, ... (last layer: one output)."""

    def __init__(self, mean: Matrix, scale: Matrix, layers: list[tuple[Matrix, Matrix]],
                 threshold: float = 0.5) -> None:
        self._mean = mean.astype(np.float32)
        self._scale = scale.astype(np.float32)
        self._layers = [(w.astype(np.float32), b.astype(np.float32)) for w, b in layers]
        self.threshold = threshold

    @classmethod
    def load(cls, path: Path = BUILTIN_WEIGHTS) -> HitVerifier:
        with np.load(path, allow_pickle=False) as data:
            count = sum(1 for name in data.files if name.startswith("W"))
            layers = [(data[f"W{i}"], data[f"b{i}"]) for i in range(count)]
            threshold = float(data["threshold"]) if "threshold" in data.files else 0.5
            return cls(data["mean"], data["scale"], layers, threshold)

    def save(self, path: Path) -> None:
        arrays: dict[str, npt.NDArray[np.float32]] = {
            "mean": self._mean, "scale": self._scale,
            "threshold": np.asarray(self.threshold, dtype=np.float32)}
        for i, (weights, bias) in enumerate(self._layers):
            arrays[f"W{i}"] = weights.astype(np.float16).astype(np.float32)
            arrays[f"b{i}"] = bias
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]

    def predict(self, features: Matrix) -> npt.NDArray[np.float32]:
        hidden = (features - self._mean) / self._scale
        for i, (weights, bias) in enumerate(self._layers):
            hidden = hidden @ weights + bias
            if i < len(self._layers) - 1:
                hidden = np.maximum(hidden, 0.0)
        logits = np.clip(hidden[:, 0], -30.0, 30.0)
        result: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return result

    def score(self, query_text: str, query_vector: Vector, texts: Sequence[str],
              vectors: Matrix) -> npt.NDArray[np.float32]:
        """Probability that each candidate asks the same question as the query."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return self.predict(pair_features(query_text, query_vector, texts, vectors))
