"""Cost–quality metrics on small hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from switchyard.learn.metrics import (
    aiq,
    apgr,
    cpt,
    nondecreasing_hull,
    oracle_choice,
    realised,
    strong_share_curve,
)


def test_hull_drops_points_under_the_upper_envelope() -> None:
    hull = nondecreasing_hull([1, 2, 3, 1.5, 4], [0.5, 0.9, 0.8, 0.6, 0.95])
    assert hull.costs.tolist() == [1, 2, 4]
    assert hull.qualities.tolist() == [0.5, 0.9, 0.95]


def test_hull_is_cut_at_its_best_point_and_flat_after() -> None:
    hull = nondecreasing_hull([1, 2, 3], [0.5, 0.9, 0.7])
    assert hull.costs.tolist() == [1, 2]
    assert hull.value(3.0) == pytest.approx(0.9)


def test_hull_keeps_best_quality_among_equal_costs() -> None:
    hull = nondecreasing_hull([1, 1, 2], [0.2, 0.4, 0.5])
    assert hull.qualities.tolist() == [0.4, 0.5]


def test_aiq_is_normalised_area_under_hull() -> None:
    hull = nondecreasing_hull([1, 2, 3, 1.5, 4], [0.5, 0.9, 0.8, 0.6, 0.95])
    # (0.5+0.9)/2*1 + (0.9+0.95)/2*2 = 2.55 over a width of 3
    assert aiq(hull, 1.0, 4.0) == pytest.approx(0.85)


def test_aiq_extends_flat_beyond_the_last_vertex() -> None:
    hull = nondecreasing_hull([1, 2], [0.5, 0.9])
    # 0.7 on [1, 2] and 0.9 on [2, 5]
    assert aiq(hull, 1.0, 5.0) == pytest.approx((0.7 + 0.9 * 3) / 4)


def test_cost_to_reach_interpolates_on_the_hull() -> None:
    hull = nondecreasing_hull([1, 2, 4], [0.5, 0.9, 0.95])
    assert hull.cost_to_reach(0.7) == pytest.approx(1.5)
    assert hull.cost_to_reach(0.4) == pytest.approx(1.0)
    assert math.isinf(hull.cost_to_reach(0.96))
    assert math.isnan(hull.value(0.5))
    assert hull.value(3.0) == pytest.approx(0.925)


def _two_model_case() -> tuple[np.ndarray, np.ndarray]:
    weak = np.array([1.0, 0.0, 0.0, 1.0])
    strong = np.array([1.0, 1.0, 1.0, 0.0])
    return weak, strong


def test_apgr_and_cpt_of_a_perfect_ranking() -> None:
    weak, strong = _two_model_case()
    curve = strong_share_curve(strong - weak, weak, strong)
    assert curve.pgr().tolist() == pytest.approx([0, 1, 2, 2, 1])
    assert apgr(curve) == pytest.approx(1.375)
    assert cpt(curve, 0.5) == pytest.approx(0.25)
    assert cpt(curve, 0.8) == pytest.approx(0.25)


def test_apgr_and_cpt_of_an_inverted_ranking() -> None:
    weak, strong = _two_model_case()
    curve = strong_share_curve(weak - strong, weak, strong)
    assert curve.pgr().tolist() == pytest.approx([0, -1, -1, 0, 1])
    assert apgr(curve) == pytest.approx(-0.375)
    assert cpt(curve, 0.5) == pytest.approx(1.0)


def test_random_scores_give_apgr_near_one_half() -> None:
    rng = np.random.default_rng(1)
    weak = (rng.random(4000) < 0.6).astype(float)
    strong = (rng.random(4000) < 0.8).astype(float)
    curve = strong_share_curve(rng.random(4000), weak, strong, seed=3)
    assert apgr(curve) == pytest.approx(0.5, abs=0.03)


def test_constant_scores_give_the_expected_random_router() -> None:
    weak, strong = _two_model_case()
    curve = strong_share_curve(np.zeros(4), weak, strong)
    assert apgr(curve) == pytest.approx(0.5)
    assert cpt(curve, 0.5) == pytest.approx(0.5)


def test_oracle_picks_best_quality_then_cheapest() -> None:
    quality = np.array([[1, 1, 0], [0, 0, 0], [0.5, 1, 1], [np.nan, 0.5, 0.0]])
    cost = np.array([[3, 1, 2], [1, 2, 3], [1, 3, 2], [0.1, 5, 1]])
    choice = oracle_choice(quality, cost)
    assert choice.tolist() == [1, 0, 2, 1]
    mean_cost, mean_quality = realised(choice, np.nan_to_num(quality), cost)
    assert mean_cost == pytest.approx((1 + 1 + 2 + 5) / 4)
    assert mean_quality == pytest.approx((1 + 0 + 1 + 0.5) / 4)
