"""Paired bootstrap of router comparisons on hand-made per-prompt outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from switchyard.learn.bootstrap import (
    aiq_of_sample,
    apgr_samples,
    cost_ratio_samples,
    paired_aiq_difference,
)


def test_aiq_of_the_full_sample_is_the_plain_aiq() -> None:
    # two λ points over 4 prompts: all-cheap (cost 1, quality 0.5) and all-strong (3, 1.0)
    costs = np.array([[1.0] * 4, [3.0] * 4])
    qualities = np.array([[1.0, 0.0, 1.0, 0.0], [1.0] * 4])
    # hull from (1, 0.5) to (3, 1.0): area under a straight line = mean height 0.75
    assert aiq_of_sample(costs, qualities, np.arange(4), 1.0, 3.0) == pytest.approx(0.75)


def test_identical_routers_differ_by_exactly_zero_and_a_better_one_always_wins() -> None:
    costs = np.array([[1.0] * 4, [3.0] * 4])
    worse = np.array([[1.0, 0.0, 1.0, 0.0], [1.0] * 4])
    better = np.array([[1.0, 1.0, 1.0, 0.0], [1.0] * 4])
    single = np.tile([1.0, 3.0], (4, 1))
    same = paired_aiq_difference((costs, worse), (costs, worse), single, resamples=50)
    assert np.all(same == 0.0)
    wins = paired_aiq_difference((costs, better), (costs, worse), single, resamples=50)
    assert np.all(wins >= 0.0) and np.mean(wins) > 0.0


def test_apgr_samples_spread_around_a_perfect_router() -> None:
    weak = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    strong = np.ones(6)
    perfect = strong - weak  # prompts the weak model fails come first
    # full sample: PGR climbs linearly to 1 at share 0.5, then stays 1 -> APGR 0.75
    samples = apgr_samples(perfect, weak, strong, resamples=200)
    assert samples.size > 150 and np.all(samples >= 0.5 - 1e-12)
    assert abs(float(np.median(samples)) - 0.75) < 0.1 and np.std(samples) > 0.0
    backwards = apgr_samples(-perfect, weak, strong, resamples=200)
    assert np.all(backwards <= 0.5 + 1e-12)


def test_cost_ratio_samples_equal_each_resamples_share_of_prompts_the_cheap_model_fails() -> None:
    # best model: cost 4, quality 1 everywhere. λ point 0: a free model, right on prompts 1 and 3;
    # λ point 1: the best model only where the free one fails. Reaching quality 1 needs point 1,
    # whose cost ÷ 4 is the resample's share of failed prompts: a multiple of 1/4.
    costs = np.array([[0.0] * 4, [4.0, 0.0, 4.0, 0.0]])
    qualities = np.array([[0.0, 1.0, 0.0, 1.0], [1.0] * 4])
    ratios = cost_ratio_samples((costs, qualities), np.ones(4), np.full(4, 4.0), resamples=100)
    assert np.allclose(ratios * 4, np.round(ratios * 4)) and np.all((ratios >= 0) & (ratios <= 1))
    assert 0.3 < float(np.mean(ratios)) < 0.7 and np.std(ratios) > 0.0
    # a router whose only point is "the free model, always wrong" never reaches quality 1
    never = cost_ratio_samples((costs[:1], np.zeros((1, 4))), np.ones(4), np.full(4, 4.0), 20)
    assert np.all(np.isinf(never))
