"""Lexical evidence for the hit verifier: what two questions share and what differs.

Each text is reduced once to `TextFacts` (words, crude stems, content stems, numbers,
capitalised names, question word, negation, character n-grams); `text_features` compares two
of them, weighting words by an IDF table learned offline (`IdfTable`). Everything here is
plain Python on short strings: a few tens of microseconds per pair.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z0-9]+")
_STOPWORD_TEXT = (
    "a an the is are was were be been being am do does did doing have has had having i me my "
    "we our you your he him his she her it its they them their what which who whom this that "
    "these those of in on at by for with about to from into over under and or but if then "
    "so than too very can could should would will shall may might must how why when where "
    "there here any some all most more much many such s t just not no nor only own same "
    "as up down out off again further once get got "
    # request phrasing of chat prompts ("can you explain", "tell me about", "define")
    "please tell explain describe define give know let mean meaning concept"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_QUESTION_WORDS = (
    "what",
    "how",
    "why",
    "when",
    "where",
    "which",
    "who",
    "is",
    "are",
    "can",
    "do",
    "does",
    "should",
    "will",
    "would",
    "could",
    "did",
    "was",
    "has",
    "have",
)
_QUESTION_TYPE = {word: i + 1 for i, word in enumerate(_QUESTION_WORDS)}
_NEGATIONS = frozenset(
    {
        "not",
        "no",
        "never",
        "without",
        "don't",
        "doesn't",
        "isn't",
        "aren't",
        "can't",
        "cannot",
        "won't",
        "shouldn't",
        "didn't",
        "nothing",
        "none",
    }
)
_SUFFIXES = ("ing", "edly", "ed", "ies", "es", "s", "ly")

TEXT_FEATURE_NAMES = (
    "word_jaccard",
    "stem_jaccard",
    "content_jaccard",
    "char3_jaccard",
    "char5_jaccard",
    "bigram_jaccard",
    "idf_shared_share",
    "idf_only_min",
    "idf_only_max",
    "idf_rarest_only_min",
    "idf_rarest_only_max",
    "only_count_min",
    "only_count_max",
    "shared_content",
    "lcs_over_shorter",
    "lcs_over_longer",
    "length_difference",
    "length_ratio",
    "length_sum",
    "numbers_differ",
    "numbers_equal",
    "names_differ",
    "names_equal",
    "question_word_equal",
    "question_type_min",
    "question_type_max",
    "negation_differs",
    "first_word_equal",
    "first_two_words_equal",
    "last_word_equal",
    "same_stems",
    "same_stem_bag",
)
TEXT_FEATURES = len(TEXT_FEATURE_NAMES)


@lru_cache(maxsize=16384)
def stem(word: str) -> str:
    """Strip one common English suffix ("learning" → "learn", "cities" → "city")."""
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _char_grams(text: str, size: int) -> frozenset[str]:
    padded = f" {text} "
    return frozenset({padded[i : i + size] for i in range(len(padded) - size + 1)})


def _jaccard(
    a: frozenset[str] | frozenset[tuple[str, str]], b: frozenset[str] | frozenset[tuple[str, str]]
) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def common_subsequence(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Length of the longest common subsequence of two word sequences (bit-parallel: one
    integer update per word of `b`, Hyyrö 2004)."""
    if not a or not b:
        return 0
    positions: dict[str, int] = {}
    for i, word in enumerate(a):
        positions[word] = positions.get(word, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for word in b:
        u = v & positions.get(word, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


@dataclass(frozen=True, slots=True)
class TextFacts:
    words: tuple[str, ...]
    word_set: frozenset[str]
    stems: tuple[str, ...]
    stem_set: frozenset[str]
    content: frozenset[str]
    numbers: frozenset[str]
    names: frozenset[str]
    question_word: str
    negated: bool
    char3: frozenset[str]
    char5: frozenset[str]
    bigrams: frozenset[tuple[str, str]]


@lru_cache(maxsize=1024)
def text_facts(text: str) -> TextFacts:
    """The facts of one text. Cached (popular stored questions come back as candidates), but
    only a little: one entry holds ~16 KB of word and n-gram sets, 1024 entries ~17 MB."""
    lowered = " ".join(text.lower().split())
    words = tuple(_WORD.findall(lowered))
    stems = tuple(stem(w) for w in words)
    return TextFacts(
        words=words,
        word_set=frozenset(words),
        stems=stems,
        stem_set=frozenset(stems),
        content=frozenset(s for w, s in zip(words, stems, strict=True) if w not in _STOPWORDS),
        numbers=frozenset(_NUMBER.findall(text)),
        names=frozenset(m.lower() for m in _CAPITALISED.findall(text)[1:]),
        question_word=next((w for w in words[:4] if w in _QUESTION_TYPE), ""),
        negated=any(w in _NEGATIONS for w in words),
        char3=_char_grams(lowered, 3),
        char5=_char_grams(lowered, 5),
        bigrams=frozenset(zip(stems, stems[1:], strict=False)),
    )


class IdfTable:
    """Inverse document frequency of content stems; unseen stems get the largest value."""

    def __init__(self, stems: Iterable[str], values: Iterable[float]) -> None:
        self.values = dict(zip(stems, (float(v) for v in values), strict=True))
        self.unseen = max(self.values.values(), default=1.0)

    @classmethod
    def learn(cls, texts: Iterable[str], min_count: int = 3) -> IdfTable:
        counts: Counter[str] = Counter()
        total = 0
        for text in texts:
            counts.update(text_facts(text).content)
            total += 1
        kept = sorted(s for s, c in counts.items() if c >= min_count)
        return cls(kept, (math.log((total + 1) / (counts[s] + 1)) + 1.0 for s in kept))

    def weight(self, stems: frozenset[str]) -> float:
        return sum(self.values.get(s, self.unseen) for s in stems)

    def rarest(self, stems: frozenset[str]) -> float:
        return max((self.values.get(s, self.unseen) for s in stems), default=0.0)


def text_features(a: TextFacts, b: TextFacts, idf: IdfTable) -> list[float]:
    """`TEXT_FEATURES` symmetric features of one pair, in `TEXT_FEATURE_NAMES` order."""
    only_a, only_b, shared = a.content - b.content, b.content - a.content, a.content & b.content
    weight_a, weight_b, weight_shared = idf.weight(only_a), idf.weight(only_b), idf.weight(shared)
    rarest_a, rarest_b = idf.rarest(only_a), idf.rarest(only_b)
    len_a, len_b = len(a.words), len(b.words)
    common = common_subsequence(a.stems, b.stems)
    type_a, type_b = _QUESTION_TYPE.get(a.question_word, 0), _QUESTION_TYPE.get(b.question_word, 0)
    return [
        _jaccard(a.word_set, b.word_set),
        _jaccard(a.stem_set, b.stem_set),
        _jaccard(a.content, b.content),
        _jaccard(a.char3, b.char3),
        _jaccard(a.char5, b.char5),
        _jaccard(a.bigrams, b.bigrams),
        weight_shared / max(1e-6, weight_shared + weight_a + weight_b),
        min(weight_a, weight_b),
        max(weight_a, weight_b),
        min(rarest_a, rarest_b),
        max(rarest_a, rarest_b),
        float(min(len(only_a), len(only_b))),
        float(max(len(only_a), len(only_b))),
        float(len(shared)),
        common / max(1, min(len_a, len_b)),
        common / max(1, max(len_a, len_b)),
        float(abs(len_a - len_b)),
        min(len_a, len_b) / max(1, len_a, len_b),
        float(len_a + len_b),
        float(len(a.numbers ^ b.numbers)),
        float(bool(a.numbers | b.numbers) and a.numbers == b.numbers),
        float(len(a.names ^ b.names)),
        float(bool(a.names | b.names) and a.names == b.names),
        float(a.question_word == b.question_word),
        float(min(type_a, type_b)),
        float(max(type_a, type_b)),
        float(a.negated != b.negated),
        float(bool(a.words and b.words) and a.words[0] == b.words[0]),
        float(a.words[:2] == b.words[:2]),
        float(bool(a.words and b.words) and a.words[-1] == b.words[-1]),
        float(a.stems == b.stems),
        float(sorted(a.stems) == sorted(b.stems)),
    ]
