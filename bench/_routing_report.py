"""Metrics, Markdown and details for bench/routing.py (kept apart to keep that script short)."""

from __future__ import annotations

from typing import Any

from switchyard.learn.report import EvalReport, markdown_table, report_json, single_models_table

BARS = {
    "llmrouter9": "best learned router matches the best single model at <= 25% of its cost, "
                  "and its AIQ beats knn",
    "routellm_mmlu": "APGR >= 0.68",
    "routellm_gsm8k": "APGR >= 0.68",
    "routerbench_subset": "best single model's quality at <= 60% of its cost",
}


def _get(report: EvalReport, router: str, metric: str) -> float:
    value = report.metrics.get(router, {}).get(metric)
    return float("nan") if value is None else float(value)


def dataset_metrics(key: str, run: dict[str, Any]) -> dict[str, float]:
    report: EvalReport = run["report"]
    best = run["headline"]
    out = {
        f"{key}_aiq_best": _get(report, best, "aiq"),
        f"{key}_aiq_knn": _get(report, "knn", "aiq"),
        f"{key}_aiq_oracle": _get(report, "oracle", "aiq"),
        f"{key}_aiq_zero_router": _get(report, "zero_router", "aiq"),
        f"{key}_cost_ratio_to_match_best": _get(report, best, "cost_ratio_to_match_best"),
        f"{key}_knn_cost_ratio_to_match_best": _get(report, "knn", "cost_ratio_to_match_best"),
        f"{key}_quality_at_25pct_best_cost": _get(report, best, "quality_at_25pct_best_cost"),
        f"{key}_quality_at_50pct_best_cost": _get(report, best, "quality_at_50pct_best_cost"),
    }
    if report.reference.strong is not None:
        for metric in ("apgr", "cpt50", "cpt80"):
            out[f"{key}_{metric}"] = _get(report, best, metric)
            out[f"{key}_knn_{metric}"] = _get(report, "knn", metric)
    if key == "routerbench_subset":
        at_best_cost = _get(report, best, "quality_at_best_cost")
        out[f"{key}_quality_minus_best_single"] = at_best_cost - report.reference.best_quality
        out[f"{key}_cost_ratio_vs_best_single"] = out[f"{key}_cost_ratio_to_match_best"]
    if report.fit_seconds:
        out[f"{key}_train_seconds_max"] = max(report.fit_seconds.values())
    if "leak_free" in run:
        leak_free: EvalReport = run["leak_free"]
        out[f"{key}_leakfree_cost_ratio_to_match_best"] = _get(
            leak_free, best, "cost_ratio_to_match_best")
        out[f"{key}_leakfree_aiq_best"] = _get(leak_free, best, "aiq")
        out[f"{key}_leakfree_aiq_knn"] = _get(leak_free, "knn", "aiq")
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _section(key: str, run: dict[str, Any], metrics: dict[str, float]) -> list[str]:
    report: EvalReport = run["report"]
    ref = report.reference
    lines = [f"## {key}", "",
             f"train {len(run['train'])} / test {len(run['test'])} prompts, "
             f"{len(run['train'].models)} models. Bar: {BARS[key]}.", "",
             f"Features (chosen by CV on train): `{run['feature_set']}`. "
             f"CV: 3-fold × {run.get('cv_repeats', 1)}. "
             f"Headline router (best CV score on train): **{run['headline']}**. "
             f"Best single model on test: {ref.best_single} "
             f"(quality {ref.best_quality:.4f}, cost {ref.best_cost:.3e} USD).", "",
             markdown_table(report), "",
             f"![{key}](routing_{key}.png)", "",
             "<details><summary>single models (test)</summary>", "",
             single_models_table(report), "", "</details>", ""]
    if report.tuning:
        lines += ["CV-chosen hyper-parameters: " + "; ".join(
            f"{k}: {t.params} (cv {t.cv_score:.4f})" for k, t in report.tuning.items()), ""]
    if run.get("noise"):
        noise = run["noise"]
        lines += [f"Test-split noise (paired bootstrap over the {len(run['test'])} test prompts, "
                  "300 resamples, headline router): " + ", ".join(
                      f"{k} = {_fmt(v)}" for k, v in noise.items()), ""]
        for name, value in noise.items():
            metrics[f"{key}_bootstrap_{name}"] = float(value)
    if "leak_free" in run:
        lines += ["### llmrouter9, leak-free test (119 prompts that also occur in train "
                  "removed)", "", markdown_table(run["leak_free"]), "",
                  "![leak-free](routing_llmrouter9_leakfree.png)", ""]
    lines += ["Key numbers: " + ", ".join(f"`{k}` = {_fmt(v)}" for k, v in metrics.items()), ""]
    return lines


def build_outputs(runs: dict[str, dict[str, Any]],
                  extra: dict[str, Any]) -> tuple[dict[str, float], str, dict[str, Any]]:
    metrics: dict[str, float] = {}
    lines = ["# Learned routing benchmark", "",
             "All numbers are on held-out test prompts; routers, features and hyper-parameters "
             "were chosen on train only (3-fold CV, repeated with new shuffles on small training "
             "sets; the CV score is the bar's own metric family: AIQ, or APGR for two models). "
             "Curves: each router swept over λ in "
             "`argmax quality − λ·cost`; metrics use the non-decreasing convex hull of its "
             "points (mixing two λ values realises any point between them). Features per dataset "
             "(chosen by CV on train): `full` = MiniLM embedding of the prompt; `full+last` adds "
             "the embedding of its last paragraph; `+stats` adds 16 text statistics of the "
             "prompt and of its last paragraph (length, numbers, sentences, code/maths marks); "
             "`+ngrams` adds 256 hashed word uni/bigrams of the last paragraph. "
             "`task` predicts the task from the prompt text (the category label "
             "is a training target only, never an input at serving time). `ensemble` averages "
             "the members' predicted quality; its members are the combination with the best CV "
             "score, computed from the members' held-out CV predictions. The headline "
             "router is the one with the best CV score on train, never the best on test.", ""]
    per_dataset: dict[str, Any] = {}
    for key, run in runs.items():
        own = dataset_metrics(key, run)
        lines += _section(key, run, own)
        metrics.update(own)
        per_dataset[key] = report_json(run["report"])
        per_dataset[key]["headline"] = run["headline"]
    lines += _extras(extra, metrics)
    return metrics, "\n".join(lines) + "\n", {"datasets": per_dataset, **extra}


def _extras(extra: dict[str, Any], metrics: dict[str, float]) -> list[str]:
    lines: list[str] = []
    serving = extra.get("serving")
    if serving:
        for name, value in serving.items():
            metrics[f"serving_{name}"] = float(value)
        lines += ["## Serving", "", "| measure | value |", "|---|---:|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in serving.items()]
        lines += ["", "`choose()` runs after the embedding; its p50 is what learned routing "
                  "adds on top of the embedding.", ""]
    for key in ("calibration_llmrouter9", "calibration_routellm_mmlu"):
        if key in extra:
            lines += [f"## Calibration ({key.split('_', 1)[1]})", "",
                      "λ chosen on train prompts (no outcomes used) for the target; achieved "
                      "on test:", ""]
            lines += [f"- {k}: {_fmt(v)}" for k, v in extra[key].items()]
            lines.append("")
            for name, value in extra[key].items():
                metrics[f"{key}_{name}"] = float(value)
    for result in extra.get("onboarding", []):
        lines += [f"## Onboarding {result['model']} into `{result['router']}`", "",
                  "| setting | AIQ | cost ratio to match best | quality at 25% cost |",
                  "|---|---:|---:|---:|"]
        rows = [("never seen", result["without_model"]),
                ("trained with all of train", result["trained_with_all"])]
        rows += [(f"onboarded on {n} prompts (median of 3 seeds)", m)
                 for n, m in result["onboarded"].items()]
        for label, values in rows:
            lines.append(f"| {label} | " + " | ".join(
                _fmt(values.get(k)) for k in ("aiq", "cost_ratio_to_match_best",
                                              "quality_at_25pct_best_cost")) + " |")
        for size, values in result["onboarded"].items():
            if values.get("aiq") is not None:
                metrics[f"onboard_{result['router']}_{size}_aiq"] = float(values["aiq"])
        lines.append("")
    return lines
