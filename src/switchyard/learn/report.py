"""Train/tune every requested router on train, evaluate all of them and the baselines on test.

Used by `switchyard eval` and `bench/routing.py`, so the CLI and the benchmark report the same
numbers the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from switchyard.learn.artifacts import TrainedRouter
from switchyard.learn.datasets import RoutingDataset
from switchyard.learn.evaluate import (
    Reference,
    RouterCurve,
    baseline_curves,
    reference_for,
    single_model_curves,
    summarise,
    sweep_lambda,
)
from switchyard.learn.routers.base import FloatArray
from switchyard.learn.training import (
    DEFAULT_GRIDS,
    ENSEMBLE_MEMBERS,
    TuningResult,
    fit_router,
    prompt_chars,
    reference_cost_of,
    tune,
    tune_ensemble,
)

Progress = Callable[[str], None]
METRIC_COLUMNS = ("aiq", "max_quality", "quality_at_25pct_best_cost",
                  "quality_at_50pct_best_cost", "cost_ratio_to_match_best", "apgr", "cpt50",
                  "cpt80")


@dataclass
class EvalReport:
    dataset: str
    reference: Reference
    curves: list[RouterCurve]
    metrics: dict[str, dict[str, float | None]]
    tuning: dict[str, TuningResult] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    routers: dict[str, TrainedRouter] = field(default_factory=dict)


def curve_of(router: TrainedRouter, name: str, test: RoutingDataset,
             features: FloatArray) -> RouterCurve:
    pred_quality, pred_cost = router.predict(features, prompt_chars(test))
    return sweep_lambda(name, pred_quality, pred_cost, test, router.reference_cost)


def train_routers(train: RoutingDataset, features: FloatArray, kinds: Sequence[str], *,
                  tune_params: bool, seed: int, folds: int = 3, repeats: int = 1,
                  fixed: dict[str, dict[str, Any]] | None = None,
                  progress: Progress | None = None,
                  ) -> tuple[dict[str, TrainedRouter], dict[str, TuningResult],
                             dict[str, float]]:
    """Tune (CV on train) and fit each kind; "ensemble" uses the tuned members."""
    routers: dict[str, TrainedRouter] = {}
    tuning: dict[str, TuningResult] = {}
    seconds: dict[str, float] = {}
    fixed = fixed or {}
    for kind in kinds:
        if kind == "ensemble":
            continue
        params: dict[str, Any] = dict(fixed.get(kind, {}))
        if tune_params and kind not in fixed and DEFAULT_GRIDS.get(kind):
            tuning[kind] = tune(kind, train, features, folds=folds, seed=seed,
                                progress=progress, repeats=repeats)
            params = tuning[kind].params
        start = time.perf_counter()
        routers[kind] = fit_router(kind, train, features, params, seed)
        seconds[kind] = time.perf_counter() - start
    if "ensemble" in kinds:
        params = dict(fixed.get("ensemble", {}))
        if not params:
            if tune_params and sum(k in tuning for k in ENSEMBLE_MEMBERS) >= 2:
                tuning["ensemble"] = tune_ensemble(tuning, train, features, folds=folds,
                                                   seed=seed, progress=progress, repeats=repeats)
                params = tuning["ensemble"].params
            else:
                params = {"members": ["knn", "mlp"],
                          **{k: routers[k].meta["params"] for k in ("knn", "mlp") if k in routers}}
        start = time.perf_counter()
        routers["ensemble"] = fit_router("ensemble", train, features, params, seed)
        seconds["ensemble"] = time.perf_counter() - start
    return routers, tuning, seconds


def evaluate_all(train: RoutingDataset, test: RoutingDataset,
                 routers: dict[str, TrainedRouter], test_features: FloatArray,
                 seed: int = 0) -> EvalReport:
    """Curves and metrics of every router, every baseline and every single model on `test`."""
    ref = reference_for(test)
    curves = [curve_of(r, name, test, test_features) for name, r in routers.items()]
    curves += baseline_curves(train, test, reference_cost_of(train))
    curves += single_model_curves(test)
    metrics = {c.name: summarise(c, ref, test, seed) for c in curves if c.kind != "single"}
    return EvalReport(test.name, ref, curves, metrics, routers=dict(routers))


def markdown_table(report: EvalReport, columns: Sequence[str] = METRIC_COLUMNS) -> str:
    shown = [c for c in columns if any(c in m for m in report.metrics.values())]
    lines = ["| router | " + " | ".join(shown) + " |",
             "|---|" + "---:|" * len(shown)]
    for name, metrics in report.metrics.items():
        cells = [_cell(metrics.get(c)) for c in shown]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def single_models_table(report: EvalReport) -> str:
    ref = report.reference
    lines = ["| model | mean quality | mean cost (USD) |", "|---|---:|---:|"]
    for model in sorted(ref.single_qualities, key=lambda m: -ref.single_qualities[m]):
        mark = " (best single)" if model == ref.best_single else ""
        lines.append(f"| {model}{mark} | {ref.single_qualities[model]:.4f} | "
                     f"{ref.single_costs[model]:.3e} |")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


def report_json(report: EvalReport) -> dict[str, Any]:
    ref = report.reference
    return {
        "dataset": report.dataset,
        "best_single": ref.best_single,
        "best_single_quality": ref.best_quality,
        "best_single_cost": ref.best_cost,
        "single_models": {m: {"quality": ref.single_qualities[m], "cost": ref.single_costs[m]}
                          for m in ref.single_qualities},
        "metrics": report.metrics,
        "curves": {c.name: {"costs": c.costs.tolist(), "qualities": c.qualities.tolist(),
                            "kind": c.kind} for c in report.curves if c.kind != "single"},
        "tuning": {k: {"params": t.params, "cv_score": t.cv_score, "seconds": t.seconds}
                   for k, t in report.tuning.items()},
        "fit_seconds": report.fit_seconds,
    }
