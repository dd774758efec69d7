"""Routing-outcome parsing (any model set, missing outcomes), splits and calibration."""

from __future__ import annotations

import numpy as np
import pytest

from switchyard.errors import ConfigError
from switchyard.learn.calibration import calibrate_cost, calibrate_share
from switchyard.learn.datasets import parse_rows, split_by_prompt_hash, without_prompts_in

ROWS = [
    {"id": "a", "prompt": "p1", "category": "x",
     "outcomes": {"m1": {"quality": 1.0, "cost": 0.1}, "m2": {"quality": 0.0, "cost": 0.5}}},
    {"id": "b", "prompt": "p2", "category": None,
     "outcomes": {"m2": {"quality": 0.5, "cost": 0.4}, "m3": {"quality": 1, "cost": 2}}},
]


def test_parse_rows_unions_models_and_marks_missing_as_nan() -> None:
    data = parse_rows(ROWS, "t")
    assert data.models == ("m1", "m2", "m3")
    assert np.isnan(data.quality[1, 0]) and np.isnan(data.quality[0, 2])
    assert data.quality[1, 1] == 0.5 and data.cost[1, 2] == 2.0
    assert data.categories == ("x", None)
    assert data.mean_quality().tolist() == [1.0, 0.25, 1.0]
    assert data.observed.sum() == 4


def test_parse_rows_rejects_rows_without_outcomes() -> None:
    with pytest.raises(ConfigError, match="row 0"):
        parse_rows([{"prompt": "x"}], "t")


def test_restrict_models_keeps_order_and_rejects_unknown() -> None:
    data = parse_rows(ROWS, "t").restrict_models(["m3", "m1"])
    assert data.models == ("m3", "m1") and data.quality.shape == (2, 2)
    with pytest.raises(ConfigError):
        data.restrict_models(["nope"])


def test_prompt_hash_split_is_fixed_and_keeps_duplicates_together() -> None:
    rows = [{"id": str(i), "prompt": f"question {i % 300}", "outcomes": {"m": {"quality": 1}}}
            for i in range(1000)]
    data = parse_rows(rows, "d")
    train, test = split_by_prompt_hash(data)
    again_train, again_test = split_by_prompt_hash(data)
    assert train.ids == again_train.ids and test.ids == again_test.ids
    assert not set(train.prompts) & set(test.prompts)
    assert 0.1 < len(test) / len(data) < 0.3
    assert len(without_prompts_in(test, train)) == len(test)


def test_without_prompts_in_drops_leaked_rows() -> None:
    data = parse_rows(ROWS, "t")
    other = parse_rows(ROWS[:1], "o")
    assert without_prompts_in(data, other).ids == ("b",)


def test_cost_calibration_meets_the_budget() -> None:
    rng = np.random.default_rng(0)
    quality = np.stack([rng.random(500) * 0.6, 0.4 + rng.random(500) * 0.6], axis=1)
    cost = np.tile([1.0, 10.0], (500, 1))
    result = calibrate_cost(quality, cost, 10.0, max_cost=4.0)
    assert result.achieved <= 4.0 and result.achieved > 3.8


def test_share_calibration_is_a_quantile() -> None:
    rng = np.random.default_rng(1)
    quality = np.stack([rng.random(1000), rng.random(1000)], axis=1)
    cost = np.tile([1.0, 10.0], (1000, 1))
    result = calibrate_share(quality, cost, 10.0, column=1, max_share=0.2)
    assert result.achieved == pytest.approx(0.2, abs=0.002)
    assert result.achieved <= 0.2
    three = np.concatenate([quality, rng.random((1000, 1))], axis=1)
    wide = calibrate_share(three, np.tile([1.0, 10.0, 5.0], (1000, 1)), 10.0, 1, 0.1)
    assert 0.08 <= wide.achieved <= 0.1
