"""The hit verifier: feature layout, shipped weights, save/load round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from switchyard.cache.verifier import (
    BUILTIN_WEIGHTS,
    LEXICAL_FEATURES,
    HitVerifier,
    lexical_features,
    pair_features,
)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    return v / np.linalg.norm(v)


def test_lexical_features_flag_differing_numbers_and_names() -> None:
    same = lexical_features("How do I learn Python in 2024?", "How do I learn  Python in 2024 ?")
    other = lexical_features("How do I learn Python in 2024?", "How do I learn Java in 2019?")
    assert len(same) == len(other) == LEXICAL_FEATURES
    numbers_differ, names_differ = 7, 9
    assert same[numbers_differ] == 0 and other[numbers_differ] > 0
    assert same[names_differ] == 0 and other[names_differ] > 0
    assert same[0] == 1.0 > other[0]


def test_pair_features_layout() -> None:
    q = unit(0)
    rows = pair_features("a b c", q, ["a b c", "x y"], np.stack([q, unit(1)]))
    assert rows.shape == (2, 1 + 2 * 384 + LEXICAL_FEATURES)
    assert abs(rows[0, 0] - 1.0) < 1e-6
    assert np.allclose(rows[0, 1:385], 0.0)


def test_builtin_weights_load_and_fit_the_feature_layout() -> None:
    assert BUILTIN_WEIGHTS.stat().st_size < 2 * 1024 * 1024
    verifier = HitVerifier.load()
    assert 0.0 < verifier.threshold < 1.0
    q = unit(3)
    scores = verifier.score("What is the capital of France?", q,
                            ["What is the capital of France?", "How tall is Mount Everest?"],
                            np.stack([q, q]))  # same vector: only the text evidence differs
    assert scores.shape == (2,)
    assert np.all((scores >= 0) & (scores <= 1))


def test_save_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    layers = [(rng.standard_normal((5, 3)).astype(np.float32), np.zeros(3, np.float32)),
              (rng.standard_normal((3, 1)).astype(np.float32), np.zeros(1, np.float32))]
    verifier = HitVerifier(np.zeros(5, np.float32), np.ones(5, np.float32), layers, 0.7)
    verifier.save(tmp_path / "v.npz")
    loaded = HitVerifier.load(tmp_path / "v.npz")
    x = rng.standard_normal((4, 5)).astype(np.float32)
    assert np.allclose(verifier.predict(x), loaded.predict(x), atol=1e-2)
    assert abs(loaded.threshold - 0.7) < 1e-6
