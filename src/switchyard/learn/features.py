"""What a router sees of a prompt: text views to embed, and how they become one feature vector.

The embedder truncates at 256 tokens, so a long few-shot prompt embeds as its *examples* and not
as the question at its end. The `last_block` view is the prompt's final paragraph(s) (at least
`MIN_BLOCK_CHARS`), which is where the actual question sits in few-shot and passage prompts.
Feature sets:

- `full`: the embedding of the whole prompt (what other semantic signals embed too);
- `full+last`: [embedding(full), embedding(last_block)] — 2 × dim; for a one-paragraph prompt
  both halves are the same vector, so the second embedding costs nothing extra;
- `+stats`: scaled text statistics of the whole prompt and of its last block (length, numbers,
  lines, sentences, code/maths marks, question words): difficulty signals (e.g. how many numbers
  and steps a word problem has) that a sentence embedding blurs;
- `+ngrams`: hashed word unigrams and bigrams of the last block (`NGRAM_DIMS` buckets,
  L2-normalised, scaled by `NGRAM_SCALE`): lexical cues without a vocabulary file.

Everything here is available at serving time from the request text alone.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

# `switchyard train` and bench/routing.py embed prompts with the first 256 tokens, fp32 MiniLM;
# a served router embeds with what its artifact records (`routing.learned.embedding_of`).
TRAIN_EMBED_TOKENS = 256
_DIGITS = re.compile(r"\d+")
_SENTENCE = re.compile(r"[.!?](\s|$)")
_CODE = re.compile(r"\bdef |\breturn\b|```|\bclass |[{};]")
_MATH = re.compile(r"[=+*/^$\\]")
_DECIMAL = re.compile(r"\d[.,]\d|\d/\d|%|\$\s?\d")
_WORD = re.compile(r"[a-z]+|\d+")
_QUESTION = re.compile(r"\b(how|what|which|who|when|where|why)\b", re.IGNORECASE)

FEATURE_SETS = ("full", "full+last", "full+last+stats", "full+last+stats+ngrams")
MIN_BLOCK_CHARS = 64
STATS_DIMS = 16
STATS_SCALE = 0.5  # keeps the block's norm near one embedding's (kNN uses cosine over all)
NGRAM_DIMS = 256
NGRAM_SCALE = 0.5

Vectors = npt.NDArray[np.float32]


def last_block(prompt: str, min_chars: int = MIN_BLOCK_CHARS) -> str:
    """The trailing paragraphs of `prompt` (split on blank lines), at least `min_chars` long."""
    blocks = [b for b in prompt.strip().split("\n\n") if b.strip()]
    if not blocks:
        return prompt.strip()
    taken: list[str] = []
    for block in reversed(blocks):
        taken.insert(0, block)
        if sum(len(b) for b in taken) >= min_chars:
            break
    return "\n\n".join(taken).strip()


def views_needed(feature_set: str) -> tuple[str, ...]:
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}; known: {FEATURE_SETS}")
    return ("full",) if feature_set == "full" else ("full", "last")


def _block_stats(text: str) -> list[float]:
    numbers = _DIGITS.findall(text)
    largest = max((len(n) for n in numbers), default=0)
    return [
        np.log1p(len(text)) / 8.0,
        min(len(numbers), 60) / 20.0,
        min(len(set(numbers)), 40) / 10.0,
        min(largest, 12) / 6.0,
        min(len(_DECIMAL.findall(text)), 20) / 5.0,
        min(text.count("\n"), 60) / 20.0,
        min(len(_SENTENCE.findall(text)), 60) / 20.0,
        min(len(_CODE.findall(text)), 30) / 10.0,
    ]


def text_stats(prompts: Sequence[str]) -> npt.NDArray[np.float64]:
    """[n, STATS_DIMS] roughly unit-scaled statistics of the prompt and of its last block."""
    rows = []
    for prompt in prompts:
        tail = last_block(prompt)
        rows.append(_block_stats(prompt)[:1] + [
            min(len(_MATH.findall(prompt)), 60) / 20.0,
            min(len(_QUESTION.findall(tail)), 6) / 2.0,
            float(prompt.rstrip().endswith("?")),
        ] + _block_stats(tail) + [
            min(len(_WORD.findall(tail.lower())), 400) / 100.0,
            min(prompt.count("\n\n"), 20) / 5.0,
            min(len(prompt) - len(tail), 4000) / 1000.0,
            min(len(_MATH.findall(tail)), 40) / 10.0,
        ])
    return STATS_SCALE * np.asarray(rows, dtype=np.float64).reshape(len(prompts), STATS_DIMS)


def hashed_ngrams(prompts: Sequence[str], dims: int = NGRAM_DIMS) -> npt.NDArray[np.float64]:
    """[n, dims] L2-normalised counts of hashed word unigrams and bigrams of the last block."""
    out = np.zeros((len(prompts), dims))
    for i, prompt in enumerate(prompts):
        words = _WORD.findall(last_block(prompt).lower())
        grams = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
        for gram in grams:
            out[i, zlib.crc32(gram.encode()) % dims] += 1.0
        norm = float(np.linalg.norm(out[i]))
        if norm > 0:
            out[i] *= NGRAM_SCALE / norm
    return out


def view_texts(prompts: Sequence[str], view: str) -> list[str]:
    if view == "full":
        return list(prompts)
    if view == "last":
        return [last_block(p) for p in prompts]
    raise ValueError(f"unknown view {view!r}")


def build_features(prompts: Sequence[str], feature_set: str,
                   embed: Callable[[list[str]], Vectors]) -> npt.NDArray[np.float64]:
    """Feature matrix [n, k·dim] for `prompts`; `embed` maps texts to unit vectors.

    For the `last` view, only prompts whose last block differs from the prompt are embedded
    again; the others reuse their full-prompt vector.
    """
    parts: list[npt.NDArray[np.float64]] = []
    full: Vectors | None = None
    for view in views_needed(feature_set):
        if view == "full":
            full = embed(list(prompts))
            parts.append(full.astype(np.float64))
            continue
        texts = view_texts(prompts, view)
        changed = [i for i, (p, t) in enumerate(zip(prompts, texts, strict=True)) if p != t]
        base = full if full is not None else embed(list(prompts))
        vectors = np.array(base, dtype=np.float64, copy=True)
        if changed:
            vectors[changed] = embed([texts[i] for i in changed])
        parts.append(vectors)
    parts.append(text_features(prompts, feature_set))
    return np.concatenate(parts, axis=1)


def text_features(prompts: Sequence[str], feature_set: str) -> npt.NDArray[np.float64]:
    """The non-embedding part of a feature set ([n, 0] when it has none)."""
    parts = [np.zeros((len(prompts), 0))]
    if "+stats" in feature_set:
        parts.append(text_stats(prompts))
    if "+ngrams" in feature_set:
        parts.append(hashed_ngrams(prompts))
    return np.concatenate(parts, axis=1)
