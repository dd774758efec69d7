"""Calibration: turn an operator target into a λ on a calibration sample of prompts.

Targets:
- `max_cost`: average predicted cost per request must not exceed this (USD);
- `max_share` of one model: at most this fraction of requests may go to `model`.

Only prompts (features + lengths) are needed, no outcomes. For one model's share the λ is an
exact quantile: a prompt leaves model m at λ_i = ref · gain_i / extra_cost_i, so λ is the
(1 − share) quantile of those flip points (two-model case); in general λ is found by bisection
over a log grid, since spend and expensive-model share fall as λ grows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from switchyard.learn.routers.base import FloatArray, choose_by_lambda

LAMBDA_LOW = 1e-5
LAMBDA_HIGH = 1e4


@dataclass(frozen=True)
class Calibration:
    lam: float
    target: float
    achieved: float  # on the calibration sample
    kind: str  # "max_cost" | "max_share"
    model: str | None = None


def _spend(pred_quality: FloatArray, pred_cost: FloatArray, lam: float, ref: float) -> float:
    choice = choose_by_lambda(pred_quality, pred_cost, lam, ref)
    return float(np.mean(pred_cost[np.arange(choice.shape[0]), choice]))


def _share(pred_quality: FloatArray, pred_cost: FloatArray, lam: float, ref: float,
           column: int) -> float:
    return float(np.mean(choose_by_lambda(pred_quality, pred_cost, lam, ref) == column))


def _smallest_lambda(measure: Callable[[float], float], target: float,
                     steps: int = 60) -> float:
    """Smallest λ on [LOW, HIGH] (log bisection) with measure(λ) <= target."""
    if measure(0.0) <= target:
        return 0.0
    low, high = np.log(LAMBDA_LOW), np.log(LAMBDA_HIGH)
    if measure(float(np.exp(high))) > target:
        return float(np.exp(high))
    for _ in range(steps):
        middle = (low + high) / 2
        if measure(float(np.exp(middle))) <= target:
            high = middle
        else:
            low = middle
    return float(np.exp(high))


def calibrate_cost(pred_quality: FloatArray, pred_cost: FloatArray, reference_cost: float,
                   max_cost: float) -> Calibration:
    """λ that keeps the mean predicted cost per request at or under `max_cost`."""
    lam = _smallest_lambda(lambda x: _spend(pred_quality, pred_cost, x, reference_cost),
                           max_cost)
    achieved = _spend(pred_quality, pred_cost, lam, reference_cost)
    return Calibration(lam, max_cost, achieved, "max_cost")


def calibrate_share(pred_quality: FloatArray, pred_cost: FloatArray, reference_cost: float,
                    column: int, max_share: float, model: str | None = None) -> Calibration:
    """λ that sends at most `max_share` of the requests to model `column`."""
    if pred_quality.shape[1] == 2:
        other = 1 - column
        gain = pred_quality[:, column] - pred_quality[:, other]
        extra = pred_cost[:, column] - pred_cost[:, other]
        with np.errstate(divide="ignore", invalid="ignore"):
            flip = np.where(extra > 0, reference_cost * gain / extra, np.inf)
            flip = np.where((extra <= 0) & (gain < 0), -np.inf, flip)
        # prompt i goes to `column` iff λ < flip_i: pick λ at the (1 - share) quantile
        lam = float(np.quantile(flip[np.isfinite(flip)], 1.0 - max_share)) if np.any(
            np.isfinite(flip)) else 0.0
        lam = max(lam, 0.0)
        lam = float(np.nextafter(lam, np.inf))
    else:
        lam = _smallest_lambda(
            lambda x: _share(pred_quality, pred_cost, x, reference_cost, column), max_share)
    achieved = _share(pred_quality, pred_cost, lam, reference_cost, column)
    if achieved > max_share:  # ties at the quantile: fall back to bisection
        lam = _smallest_lambda(
            lambda x: _share(pred_quality, pred_cost, x, reference_cost, column), max_share)
        achieved = _share(pred_quality, pred_cost, lam, reference_cost, column)
    return Calibration(lam, max_share, achieved, "max_share", model)
