"""The hit verifier: lexical features, numpy tree ensemble, shipped weights, save/load."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from switchyard.cache.verifier import BUILTIN_WEIGHTS, FEATURES, HitVerifier
from switchyard.cache.verifier_text import (
    TEXT_FEATURE_NAMES,
    TEXT_FEATURES,
    IdfTable,
    common_subsequence,
    stem,
    text_facts,
    text_features,
)
from switchyard.cache.verifier_trees import TreeEnsemble


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    return v / np.linalg.norm(v)


def features_of(a: str, b: str, idf: IdfTable | None = None) -> dict[str, float]:
    table = idf if idf is not None else IdfTable(["python", "java"], [4.0, 5.0])
    values = text_features(text_facts(a), text_facts(b), table)
    assert len(values) == TEXT_FEATURES
    return dict(zip(TEXT_FEATURE_NAMES, values, strict=True))


def test_lexical_features_flag_differing_numbers_names_and_negation() -> None:
    same = features_of("How do I learn Python in 2024?", "How do I learn  Python in 2024 ?")
    other = features_of("How do I learn Python in 2024?", "How do I learn Java in 2019?")
    assert same["numbers_differ"] == 0 and other["numbers_differ"] == 2
    assert same["names_differ"] == 0 and other["names_differ"] == 2
    assert same["word_jaccard"] == 1.0 > other["word_jaccard"]
    # only in one side: {python, 2024} (4 + unseen 5) vs {java, 2019} (5 + 5)
    assert same["idf_only_max"] == 0.0 and other["idf_only_max"] == 10.0
    assert other["idf_only_min"] == 9.0 and other["idf_rarest_only_max"] == 5.0
    negated = features_of("Is coffee healthy?", "Is coffee not healthy?")
    assert negated["negation_differs"] == 1.0 and same["negation_differs"] == 0.0


def test_lexical_features_are_symmetric() -> None:
    a, b = "Why is the sky blue during the day?", "What makes the sky look blue?"
    assert features_of(a, b) == features_of(b, a)


def test_stems_and_question_words() -> None:
    assert stem("learning") == "learn" and stem("cities") == "city" and stem("is") == "is"
    f = features_of(
        "What are the best books to learn Python?", "Which books are best for learning Python?"
    )
    assert f["content_jaccard"] == 1.0  # book(s), best, learn(ing), python
    assert f["question_word_equal"] == 0.0


def _reference_lcs(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, j in itertools.product(range(len(a)), range(len(b))):
        table[i + 1][j + 1] = (
            table[i][j] + 1 if a[i] == b[j] else max(table[i][j + 1], table[i + 1][j])
        )
    return table[-1][-1]


def test_bit_parallel_common_subsequence_matches_dynamic_programming() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        a = tuple(rng.choice(list("abcde"), size=rng.integers(0, 14)).tolist())
        b = tuple(rng.choice(list("abcdef"), size=rng.integers(0, 14)).tolist())
        assert common_subsequence(a, b) == _reference_lcs(a, b), (a, b)


def test_idf_table_weights_rare_words_higher() -> None:
    texts = [
        "how to learn python",
        "how to learn java",
        "learn cooking fast",
        "learn python quickly",
        "python or java",
    ] * 3
    idf = IdfTable.learn(texts, min_count=3)
    assert idf.values["learn"] < idf.values["java"]
    assert idf.weight(frozenset({"unseenword"})) == idf.unseen >= idf.values["java"]


def test_tree_ensemble_matches_sklearn() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(1)
    x = rng.standard_normal((600, 5))
    y = ((x[:, 0] + 0.5 * x[:, 1] * x[:, 2]) > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=7).fit(x, y)
    tables = [
        {
            "feature": p.nodes["feature_idx"],
            "threshold": p.nodes["num_threshold"],
            "left": p.nodes["left"].astype(np.int64),
            "right": p.nodes["right"].astype(np.int64),
            "value": p.nodes["value"],
            "is_leaf": p.nodes["is_leaf"],
            "depth": p.nodes["depth"],
        }
        for (p,) in model._predictors
    ]
    trees = TreeEnsemble.from_nodes(tables, float(np.ravel(model._baseline_prediction)[0]))
    probe = rng.standard_normal((200, 5))
    assert np.allclose(trees.raw(probe), model.decision_function(probe), atol=1e-9)
    again = TreeEnsemble.from_arrays(trees.arrays())
    assert np.allclose(again.raw(probe), trees.raw(probe))


def test_builtin_verifier_separates_paraphrase_from_changed_entity() -> None:
    assert BUILTIN_WEIGHTS.stat().st_size < 1024 * 1024
    verifier = HitVerifier.load()
    assert 0.0 < verifier.threshold < 1.0
    q = unit(3)
    texts = [
        "What is the capital of France?",
        "What is the capital of Germany?",
        "How tall is Mount Everest?",
    ]
    # Same vector for every candidate: only the text evidence differs.
    rows = verifier.features("What is the capital of France ?", q, texts, np.stack([q] * 3))
    assert rows.shape == (3, FEATURES)
    scores = verifier.score("What is the capital of France ?", q, texts, np.stack([q] * 3))
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[0] >= verifier.threshold
    assert scores[0] > scores[1] and scores[0] > scores[2]
    assert verifier.score("x", q, [], np.zeros((0, 384), np.float32)).shape == (0,)


def test_save_load_round_trip(tmp_path: Path) -> None:
    verifier = HitVerifier.load()
    verifier.save(tmp_path / "v.npz")
    loaded = HitVerifier.load(tmp_path / "v.npz")
    assert loaded.threshold == pytest.approx(verifier.threshold)
    assert loaded.idf.values == pytest.approx(verifier.idf.values, rel=1e-6)
    q, c = unit(4), np.stack([unit(5), unit(6)])
    texts = ["How do I cook rice?", "How can I cook rice in a microwave?"]
    assert np.allclose(
        loaded.score("How to cook rice?", q, texts, c),
        verifier.score("How to cook rice?", q, texts, c),
        atol=1e-5,
    )
