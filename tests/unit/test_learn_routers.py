"""Learned routers on small synthetic data: they learn, are deterministic, and round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from switchyard.learn.artifacts import load_router, save_router
from switchyard.learn.datasets import RoutingDataset
from switchyard.learn.routers import IRTPredictor, MFPredictor
from switchyard.learn.routers.base import choose_by_lambda, choose_by_threshold
from switchyard.learn.training import fit_router

KINDS = ["knn", "mlp", "mf", "irt", "constant"]


def synthetic(n: int = 600, seed: int = 0) -> tuple[RoutingDataset, np.ndarray]:
    """Two prompt clusters; the cheap model is good on cluster A only, the strong on both."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 2, n)
    centres = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    features = centres[cluster] + rng.normal(0, 0.15, (n, 4))
    cheap = np.where(cluster == 0, rng.random(n) < 0.9, rng.random(n) < 0.1).astype(float)
    strong = (rng.random(n) < 0.85).astype(float)
    quality = np.stack([cheap, strong], axis=1)
    cost = np.tile([1e-5, 1e-3], (n, 1))
    prompts = tuple(f"prompt {i}" for i in range(n))
    dataset = RoutingDataset("synthetic", prompts, prompts, tuple([None] * n),
                             ("cheap", "strong"), quality, cost)
    return dataset, features


@pytest.mark.parametrize("kind", KINDS[:-1])
def test_router_learns_which_cluster_needs_the_strong_model(kind: str) -> None:
    data, x = synthetic()
    router = fit_router(kind, data, x, {}, seed=1)
    probe = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    quality, _ = router.predict(probe, np.array([10.0, 10.0]))
    assert quality[0, 0] > 0.6 > quality[1, 0]
    choice = router.choose(quality, router.cost_model.predict(np.array([10.0, 10.0])), lam=0.05)
    assert choice.tolist() == [0, 1]


@pytest.mark.parametrize("kind", KINDS)
def test_training_is_deterministic_with_a_seed(kind: str) -> None:
    data, x = synthetic()
    first = fit_router(kind, data, x, {}, seed=7).predictor.predict(x[:50])
    second = fit_router(kind, data, x, {}, seed=7).predictor.predict(x[:50])
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("kind", [*KINDS, "ensemble"])
def test_artifact_round_trip_gives_the_same_predictions(kind: str, tmp_path: Path) -> None:
    data, x = synthetic()
    router = fit_router(kind, data, x, {}, seed=3)
    router.extra_arrays["calibration.prompt_chars"] = np.array([1, 2, 3])
    path = save_router(router, tmp_path / "r.npz")
    loaded = load_router(path)
    assert loaded.models == router.models and loaded.kind == kind
    np.testing.assert_allclose(loaded.predictor.predict(x[:40]), router.predictor.predict(x[:40]),
                               atol=2e-3)
    assert loaded.extra_arrays["calibration.prompt_chars"].tolist() == [1, 2, 3]
    assert not any(name.endswith(".pkl") for name in np.load(path, allow_pickle=False).files)


def test_knn_ignores_missing_outcomes() -> None:
    data, x = synthetic()
    quality = data.quality.copy()
    quality[data.quality[:, 1] == 0, 1] = np.nan  # strong model: only successes observed
    router = fit_router("knn", RoutingDataset(data.name, data.ids, data.prompts, data.categories,
                                              data.models, quality, data.cost), x, {"k": 20})
    predicted = router.predictor.predict(x[:30])
    assert np.allclose(predicted[:, 1], 1.0)


@pytest.mark.parametrize("predictor_type", [MFPredictor, IRTPredictor])
def test_onboarding_fits_only_the_new_model(predictor_type: type) -> None:
    data, x = synthetic()
    predictor = predictor_type(epochs=20)
    predictor.fit(x, data.quality[:, :1], seed=0)  # only the cheap model known
    before = predictor.predict(x[:20]).copy()
    column = predictor.onboard(x[:200], data.quality[:200, 1], seed=0)
    after = predictor.predict(x[:20])
    assert column == 1 and after.shape == (20, 2)
    np.testing.assert_allclose(after[:, 0], before[:, 0])
    assert abs(float(np.mean(after[:, 1])) - 0.85) < 0.1


def test_choose_by_lambda_trades_quality_for_cost() -> None:
    quality = np.array([[0.6, 0.9], [0.6, 0.62]])
    cost = np.array([[1.0, 10.0], [1.0, 10.0]])
    assert choose_by_lambda(quality, cost, 0.0, 10.0).tolist() == [1, 1]
    assert choose_by_lambda(quality, cost, 0.1, 10.0).tolist() == [1, 0]
    assert choose_by_lambda(quality, cost, 1.0, 10.0).tolist() == [0, 0]
    available = np.array([[True, False], [True, True]])
    assert choose_by_lambda(quality, cost, 0.0, 10.0, available).tolist() == [0, 1]


def test_choose_by_threshold_takes_cheapest_clearing_target() -> None:
    quality = np.array([[0.7, 0.9, 0.95], [0.2, 0.3, 0.4]])
    cost = np.array([[1.0, 5.0, 10.0], [1.0, 5.0, 10.0]])
    assert choose_by_threshold(quality, cost, 0.8).tolist() == [1, 2]
    assert choose_by_threshold(quality, cost, 0.5).tolist() == [0, 2]


def test_ensemble_selection_scores_averaged_held_out_predictions() -> None:
    """tune_ensemble reuses the members' held-out predictions: its score for a combination is
    the CV score of their average, recomputed here by hand from the same splits."""
    from switchyard.learn.training import (
        cv_splits,
        ensemble_options,
        score_predictions,
        tune,
        tune_ensemble,
    )

    data, x = synthetic(300)
    tuned = {kind: tune(kind, data, x, space=space, repeats=2) for kind, space in
             (("knn", {"k": [5, 20]}), ("mlp", {"epochs": [10]}))}
    splits = cv_splits(len(data), 3, 0, 2)
    assert len(splits) == 6 and not np.array_equal(splits[0][1], splits[3][1])
    for result in tuned.values():
        assert result.oof is not None and len(result.oof.quality) == 6
    chosen = tune_ensemble(tuned, data, x, repeats=2)
    assert ensemble_options(["knn", "mlp"]) == [["knn", "mlp"]]
    assert chosen.params["members"] == ["knn", "mlp"]
    by_hand = []
    for s, (train_idx, valid_idx) in enumerate(splits):
        knn, mlp = (tuned[k].oof for k in ("knn", "mlp"))
        assert knn is not None and mlp is not None
        fold = fit_router("constant", data.subset(train_idx), x[train_idx], {}, seed=0)
        cost = fold.cost_model.predict(np.array([len(p) for p in data.subset(valid_idx).prompts]))
        np.testing.assert_allclose(cost, knn.cost[s])
        by_hand.append(score_predictions("e", (knn.quality[s] + mlp.quality[s]) / 2, cost,
                                         data.subset(valid_idx), fold.reference_cost))
    assert chosen.cv_score == pytest.approx(float(np.mean(by_hand)))
    assert chosen.cv_score > 0.65  # learnable synthetic task: APGR well above random (0.5)
