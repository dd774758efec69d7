"""Learned cost–quality routing on real per-prompt outcomes (issue #5).

For each dataset: tune every router by 3-fold CV on train only, fit on train, sweep λ on the
held-out test split, and compare with baselines computed in the same run. Also: leak-free
llmrouter9 test, calibration, onboarding (MF/IRT), training time and serving latency.

    .venv/bin/python bench/routing.py            # full run (tuning; ~10-20 min on 2 cores)
    .venv/bin/python bench/routing.py --quick    # default hyper-parameters, no tuning

Writes bench/results/routing.{json,md} and bench/results/routing_<dataset>.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS_DIR, write_results  # noqa: E402
from _routing_report import build_outputs  # noqa: E402
from switchyard.embed.corpus import embed_corpus  # noqa: E402
from switchyard.learn.artifacts import TrainedRouter, save_router  # noqa: E402
from switchyard.learn.bootstrap import (  # noqa: E402
    apgr_samples,
    cost_ratio_samples,
    paired_aiq_difference,
    per_prompt_points,
)
from switchyard.learn.calibration import calibrate_cost, calibrate_share  # noqa: E402
from switchyard.learn.datasets import (  # noqa: E402
    RoutingDataset,
    load_outcomes,
    split_by_prompt_hash,
    without_prompts_in,
)
from switchyard.learn.features import TRAIN_EMBED_TOKENS, build_features  # noqa: E402
from switchyard.learn.onboarding import onboarding_experiment  # noqa: E402
from switchyard.learn.plots import plot_report  # noqa: E402
from switchyard.learn.report import EvalReport, evaluate_all, train_routers  # noqa: E402
from switchyard.learn.training import prompt_chars, tune  # noqa: E402
from switchyard.routing.learned import LearnedRouter  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "routing"
CV_ROWS = 3000  # auto repeats: small training sets get repeated CV (less noisy choices)
KINDS = ("knn", "mf", "mlp", "irt", "task", "ensemble")
DATASETS = ("llmrouter9", "routellm_mmlu", "routellm_gsm8k", "routerbench_subset")
COST_RATIO_BARS = {"llmrouter9": 0.25, "routerbench_subset": 0.60}  # issue #5's bars
FILES = {
    "llmrouter9": "llmrouter9",
    "routellm_mmlu": "routellm-mmlu",
    "routellm_gsm8k": "routellm-gsm8k",
    "routerbench_subset": "routerbench-subset",
}


def load_split(key: str) -> tuple[RoutingDataset, RoutingDataset]:
    stem = FILES[key]
    if key.startswith("routellm"):
        return split_by_prompt_hash(load_outcomes(DATA / f"{stem}.all.jsonl.gz"))
    return (
        load_outcomes(DATA / f"{stem}.train.jsonl.gz"),
        load_outcomes(DATA / f"{stem}.test.jsonl.gz"),
    )


def _source_file(dataset: RoutingDataset) -> RoutingDataset:
    """The whole file a split came from (embeddings are cached per whole file)."""
    stem = dataset.name.split(".")[0]
    matches = [
        p
        for p in DATA.glob(f"{stem}.*.jsonl.gz")
        if p.name.split(".")[1] in ("all", dataset.name.split(".")[-1])
    ]
    return load_outcomes(matches[0]) if len(matches) == 1 else dataset


_FEATURES: dict[tuple[str, str], np.ndarray[Any, Any]] = {}


def featurise(dataset: RoutingDataset, feature_set: str) -> np.ndarray[Any, Any]:
    source = _source_file(dataset)
    key = (source.name, feature_set)
    if key not in _FEATURES:
        _FEATURES[key] = build_features(
            source.prompts, feature_set,
            lambda texts: embed_corpus(texts, max_length=TRAIN_EMBED_TOKENS)
        )
    features = _FEATURES[key]
    if source is dataset:
        return features
    row = {identifier: i for i, identifier in enumerate(source.ids)}
    return features[[row[identifier] for identifier in dataset.ids]]


def choose_feature_set(
    train: RoutingDataset, options: list[str], repeats: int = 1
) -> tuple[str, dict[str, float]]:
    """Feature set with the best mean CV score (train only) of a default `knn` and `mf`."""
    probes: dict[str, dict[str, list[Any]]] = {
        "knn": {"k": [80], "temperature": [1.0], "prior_weight": [0.0]},
        "mf": {"epochs": [30], "batch_size": [512]},
    }
    scores = {}
    for feature_set in options:
        features = featurise(train, feature_set)
        scores[feature_set] = float(
            np.mean(
                [
                    tune(kind, train, features, space=space, repeats=repeats).cv_score
                    for kind, space in probes.items()
                ]
            )
        )
    return max(scores, key=lambda k: scores[k]), scores


def headline(report: EvalReport) -> str:
    """The learned router with the best CV score on train (not chosen on test)."""
    scored = {k: t.cv_score for k, t in report.tuning.items() if k in report.metrics}
    return max(scored, key=lambda k: scored[k]) if scored else "ensemble"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_dataset(key: str, feature_options: list[str], quick: bool, repeats: int) -> dict[str, Any]:
    train, test = load_split(key)
    log(f"{key}: {len(train)} train / {len(test)} test, {len(train.models)} models")
    repeats = repeats or min(3, -(-CV_ROWS // len(train)))
    feature_set, feature_scores = choose_feature_set(train, feature_options, repeats)
    log(f"{key}: features {feature_set} (cv {feature_scores})")
    x_train, x_test = featurise(train, feature_set), featurise(test, feature_set)
    routers, tuning, seconds = train_routers(
        train, x_train, KINDS, tune_params=not quick, seed=0, repeats=repeats, progress=None
    )
    report = evaluate_all(train, test, routers, x_test)
    report.tuning, report.fit_seconds = tuning, seconds
    plot_report(report, RESULTS_DIR / f"routing_{key}.png", f"{key}: test split")
    for router in routers.values():
        router.feature_set = feature_set
    out: dict[str, Any] = {
        "train": train,
        "test": test,
        "x_train": x_train,
        "x_test": x_test,
        "report": report,
        "headline": headline(report),
        "feature_set": feature_set,
        "feature_cv": feature_scores,
        "cv_repeats": repeats,
    }
    if key == "llmrouter9":
        leak_free = without_prompts_in(test, train)
        keep = [test.ids.index(i) for i in leak_free.ids]
        out["leak_free"] = evaluate_all(train, leak_free, routers, x_test[keep])
        plot_report(
            out["leak_free"],
            RESULTS_DIR / "routing_llmrouter9_leakfree.png",
            "llmrouter9: leak-free test (119 train duplicates removed)",
        )
    out["noise"] = noise_check(out, COST_RATIO_BARS.get(key))
    log(f"{key}: done; headline router (best CV on train) = {out['headline']}")
    return out


def noise_check(run: dict[str, Any], cost_ratio_bar: float | None = None) -> dict[str, float]:
    """Paired bootstrap over test prompts: how much of the test differences is sampling noise."""
    report: EvalReport = run["report"]
    test: RoutingDataset = run["test"]
    best = run["headline"]
    out: dict[str, float] = {}
    ref = report.reference
    if ref.strong is not None and ref.weak is not None:
        curve = next(c for c in report.curves if c.name == best)
        strong, weak = test.models.index(ref.strong), test.models.index(ref.weak)
        assert curve.scores is not None
        samples = apgr_samples(
            curve.scores,
            np.nan_to_num(test.quality[:, weak]),
            np.nan_to_num(test.quality[:, strong]),
        )
        out.update(
            {
                "apgr_p05": float(np.percentile(samples, 5)),
                "apgr_p95": float(np.percentile(samples, 95)),
                "apgr_share_at_or_above_0.68": float(np.mean(samples >= 0.68)),
            }
        )
    if best != "knn":
        points = {}
        for name in (best, "knn"):
            router = report.routers[name]
            quality, cost = router.predict(run["x_test"], prompt_chars(test))
            points[name] = per_prompt_points(quality, cost, test, router.reference_cost)
        diff = paired_aiq_difference(points[best], points["knn"], np.nan_to_num(test.cost))
        out.update(
            {
                "aiq_minus_knn_mean": float(np.mean(diff)),
                "aiq_minus_knn_p05": float(np.percentile(diff, 5)),
                "aiq_minus_knn_p95": float(np.percentile(diff, 95)),
                "aiq_beats_knn_share": float(np.mean(diff > 0)),
            }
        )
    if cost_ratio_bar is not None:
        router = report.routers[best]
        quality, cost = router.predict(run["x_test"], prompt_chars(test))
        points = per_prompt_points(quality, cost, test, router.reference_cost)
        column = test.models.index(ref.best_single)
        ratios = np.minimum(
            2.0,
            cost_ratio_samples(  # 2.0 = never reached (JSON has no inf)
                points, np.nan_to_num(test.quality[:, column]), np.nan_to_num(test.cost[:, column])
            ),
        )
        out.update(
            {
                "cost_ratio_p05": float(np.percentile(ratios, 5)),
                "cost_ratio_p50": float(np.percentile(ratios, 50)),
                "cost_ratio_p95": float(np.percentile(ratios, 95)),
                f"cost_ratio_share_at_or_below_{cost_ratio_bar}": float(
                    np.mean(ratios <= cost_ratio_bar)
                ),
            }
        )
    return out


def calibration_check(run: dict[str, Any], key: str) -> dict[str, float]:
    """Calibrate λ on train prompts; report what the target gives on test."""
    report: EvalReport = run["report"]
    router: TrainedRouter = report.routers[run["headline"]]
    train, test = run["train"], run["test"]
    q_train, c_train = router.predict(run["x_train"], prompt_chars(train))
    q_test, c_test = router.predict(run["x_test"], prompt_chars(test))
    rows = np.arange(len(test))
    if key.startswith("routellm"):
        strong = test.models.index(report.reference.strong or "")
        cal = calibrate_share(q_train, c_train, router.reference_cost, strong, 0.5)
        choice = router.choose(q_test, c_test, lam=cal.lam)
        return {
            "target_strong_share": 0.5,
            "train_share": cal.achieved,
            "test_share": float(np.mean(choice == strong)),
        }
    budget = 0.25 * report.reference.best_cost
    cal = calibrate_cost(q_train, c_train, router.reference_cost, budget)
    choice = router.choose(q_test, c_test, lam=cal.lam)
    return {
        "target_cost": budget,
        "train_cost": cal.achieved,
        "test_cost": float(np.mean(test.cost[rows, choice])),
        "test_quality": float(np.mean(test.quality[rows, choice])),
        "best_single_quality": report.reference.best_quality,
    }


def serving_latency(run: dict[str, Any]) -> dict[str, float]:
    """Artifact load time and per-request choose() latency (on top of the embedding)."""
    report: EvalReport = run["report"]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in ("knn", run["headline"]):
            path = save_router(report.routers[name], Path(folder) / f"{name}.npz")
            start = time.perf_counter()
            router = LearnedRouter.load(path)
            out[f"{name}_load_s"] = time.perf_counter() - start
            out[f"{name}_artifact_mb"] = path.stat().st_size / 1e6
            timings = []
            for i in range(1000):
                features = run["x_test"][i % len(run["x_test"])]
                start = time.perf_counter()
                router.choose(features, 300, lam=0.1)
                timings.append((time.perf_counter() - start) * 1000)
            out[f"{name}_choose_p50_ms"] = float(np.median(timings))
            out[f"{name}_choose_p99_ms"] = float(np.percentile(timings, 99))
    from switchyard.embed.minilm import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    prompt = run["test"].prompts[0]
    embedder.embed_batch([prompt])
    timings = []
    for _ in range(50):
        start = time.perf_counter()
        embedder.embed_batch([prompt])
        timings.append((time.perf_counter() - start) * 1000)
    out["embed_p50_ms"] = float(np.median(timings))
    return out


def onboarding(run: dict[str, Any], model: str) -> list[dict[str, Any]]:
    report: EvalReport = run["report"]
    results = []
    for kind in ("mf", "irt"):
        params = report.routers[kind].meta["params"]
        log(f"onboarding {model} into {kind}")
        results.append(
            onboarding_experiment(
                kind, run["train"], run["test"], run["x_train"], run["x_test"], model, params
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="no CV tuning")
    parser.add_argument(
        "--features",
        default="full,full+last+stats,full+last+stats+ngrams",
        help="feature sets to choose from by CV on train",
    )
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--name", default="routing", help="results file stem")
    parser.add_argument(
        "--repeats",
        type=int,
        default=0,
        help="repeated 3-fold CV (different shuffles) for every choice; "
        "0 = auto (enough repeats to score >= 3000 held-out rows, max 3)",
    )
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"routing data not found at {DATA}")
    runs = {
        key: run_dataset(key, args.features.split(","), args.quick, args.repeats)
        for key in args.datasets.split(",")
    }
    extra: dict[str, Any] = {
        "tuned": not args.quick,
        "features": {k: r["feature_set"] for k, r in runs.items()},
        "feature_cv": {k: r["feature_cv"] for k, r in runs.items()},
    }
    if "llmrouter9" in runs:
        extra["calibration_llmrouter9"] = calibration_check(runs["llmrouter9"], "llmrouter9")
        extra["serving"] = serving_latency(runs["llmrouter9"])
        extra["onboarding"] = onboarding(runs["llmrouter9"], "llama-3.1-8b-instruct")
    if "routellm_mmlu" in runs:
        extra["calibration_routellm_mmlu"] = calibration_check(
            runs["routellm_mmlu"], "routellm_mmlu"
        )
    metrics, markdown, details = build_outputs(runs, extra)
    path = write_results(args.name, metrics, markdown, details)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
