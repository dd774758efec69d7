"""What a router sees of a prompt: text views to embed, and how they become one feature vector.

The embedder truncates at 256 tokens, so a long few-shot prompt embeds as its *examples* and not
as the question at its end. The `last_block` view is the prompt's final paragraph(s) (at least
`MIN_BLOCK_CHARS`), which is where the actual question sits in few-shot and passage prompts.
Feature sets:

- `full`: the embedding of the whole prompt (what other semantic signals embed too);
- `full+last`: [embedding(full), embedding(last_block)] — 2 × dim; for a one-paragraph prompt
  both halves are the same vector, so the second embedding costs nothing extra;
- `+stats`: a few scaled text statistics (length, digits, lines, sentences, code/maths marks).

Everything here is available at serving time from the request text alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

_DIGITS = re.compile(r"\d+")
_SENTENCE = re.compile(r"[.!?](\s|$)")
_CODE = re.compile(r"\bdef |\breturn\b|```|\bclass |[{};]")
_MATH = re.compile(r"[=+*/^$\\]")

FEATURE_SETS = ("full", "full+last", "full+last+stats")
MIN_BLOCK_CHARS = 64

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


def text_stats(prompts: Sequence[str]) -> npt.NDArray[np.float64]:
    """[n, 6] roughly unit-scaled statistics of the prompt text."""
    rows = []
    for prompt in prompts:
        rows.append([
            np.log1p(len(prompt)) / 8.0,
            min(len(_DIGITS.findall(prompt)), 60) / 20.0,
            min(prompt.count("\n"), 60) / 20.0,
            min(len(_SENTENCE.findall(prompt)), 60) / 20.0,
            min(len(_CODE.findall(prompt)), 30) / 10.0,
            min(len(_MATH.findall(prompt)), 60) / 20.0,
        ])
    return np.asarray(rows, dtype=np.float64).reshape(len(prompts), 6)


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
    if feature_set.endswith("+stats"):
        parts.append(text_stats(prompts))
    return np.concatenate(parts, axis=1)
