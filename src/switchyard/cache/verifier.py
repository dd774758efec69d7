"""Hit verifier: is a cached question (candidate) really the same question as the query?

Cosine similarity of sentence embeddings alone confuses "same topic" with "same question"
(numbers, entities, a qualifier or a negation that differ). The verifier scores each
(query, candidate) pair of the top-k from:

- the cosine of the two embeddings;
- lexical evidence (`verifier_text`): word, stem, content-word, bigram and character n-gram
  overlap, IDF-weighted shared and differing words (the rarest word only one side has),
  common subsequence, lengths, numbers, names, question words, negation, first/last words;
- a linear score over the embeddings' element-wise product and absolute difference;

combined by a small gradient-boosted tree ensemble (`verifier_trees`, evaluated in numpy).
Everything is trained offline on the tuning half of the labelled question pairs only
(`python bench/cache.py --train`) and ships as one `.npz` (no pickle) with its threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from switchyard.cache.base import Vector
from switchyard.cache.verifier_text import TEXT_FEATURES, IdfTable, text_facts, text_features
from switchyard.cache.verifier_trees import TreeEnsemble

BUILTIN_WEIGHTS = Path(__file__).with_name("verifier_minilm.npz")
Matrix = npt.NDArray[np.float32]
Floats = npt.NDArray[np.float64]

# Feature layout: cosine, TEXT_FEATURES lexical features, linear embedding score.
FEATURES = 1 + TEXT_FEATURES + 1


def text_rows(query_text: str, texts: Sequence[str], idf: IdfTable) -> Floats:
    query = text_facts(query_text)
    rows = [text_features(query, text_facts(text), idf) for text in texts]
    return np.asarray(rows, dtype=np.float64).reshape(len(texts), TEXT_FEATURES)


def embedding_pair(query_vector: Vector, vectors: Matrix) -> Floats:
    """[a*b, |a-b|] rows of (candidate, query) embeddings, the linear score's input."""
    q = np.asarray(query_vector, dtype=np.float64)[None, :]
    c = np.asarray(vectors, dtype=np.float64)
    return np.hstack([c * q, np.abs(c - q)])


class HitVerifier:
    """IDF table + linear embedding score + tree ensemble → probability of "same question"."""

    def __init__(
        self,
        idf: IdfTable,
        linear: Floats,
        linear_bias: float,
        trees: TreeEnsemble,
        threshold: float = 0.5,
    ) -> None:
        self.idf = idf
        self._linear = np.asarray(linear, dtype=np.float64)
        self._linear_bias = float(linear_bias)
        self.trees = trees
        self.threshold = threshold

    @classmethod
    def load(cls, path: Path = BUILTIN_WEIGHTS) -> HitVerifier:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        stems = bytes(arrays["idf_stems"].tobytes()).decode("utf-8").split("\n")
        idf = IdfTable(stems if stems != [""] else [], arrays["idf_values"].tolist())
        return cls(
            idf,
            arrays["linear"],
            float(arrays["linear_bias"]),
            TreeEnsemble.from_arrays(arrays),
            float(arrays["threshold"]),
        )

    def save(self, path: Path) -> None:
        stems = "\n".join(self.idf.values).encode("utf-8")
        arrays: dict[str, npt.NDArray[Any]] = {
            "idf_stems": np.frombuffer(stems, dtype=np.uint8),
            "idf_values": np.asarray(list(self.idf.values.values()), dtype=np.float32),
            "linear": self._linear,
            "linear_bias": np.asarray(self._linear_bias),
            "threshold": np.asarray(self.threshold, dtype=np.float64),
            **self.trees.arrays(),
        }
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]

    def linear_score(self, pair_embeddings: Floats) -> Floats:
        result: Floats = pair_embeddings @ self._linear + self._linear_bias
        return result

    def features(
        self, query_text: str, query_vector: Vector, texts: Sequence[str], vectors: Matrix
    ) -> Floats:
        """One row per candidate, `FEATURES` columns (see the layout above)."""
        q = np.asarray(query_vector, dtype=np.float64)
        cosine = np.asarray(vectors, dtype=np.float64) @ q
        linear = self.linear_score(embedding_pair(query_vector, vectors))
        return np.hstack([cosine[:, None], text_rows(query_text, texts, self.idf), linear[:, None]])

    def predict(self, features: Floats) -> npt.NDArray[np.float32]:
        raw = np.clip(self.trees.raw(features), -30.0, 30.0)
        result: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-raw))).astype(np.float32)
        return result

    def score(
        self, query_text: str, query_vector: Vector, texts: Sequence[str], vectors: Matrix
    ) -> npt.NDArray[np.float32]:
        """Probability that each candidate asks the same question as the query."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return self.predict(self.features(query_text, query_vector, texts, vectors))
