"""Semantic cache benchmark → bench/results/cache.{json,md} (+ cache_pr.png).

    python bench/cache.py [--train] [--entries 100000] [--skip-pg] [--skip-gateway]
    python bench/cache.py --latency-only   # rerun only the latency part (quiet machine)

Quality: ../shared/data/cache/qqp_20k.jsonl.gz split by a fixed seed into tuning/test halves;
the hit verifier is trained (`--train`, writes src/switchyard/cache/verifier_minilm.npz) and
its threshold chosen on the tuning half only; side A of every test pair is inserted, side B
queried; exact-only, cosine-only and cosine+verifier run in the same process.
Latency: embedded lookup and pgvector lookup at `--entries` (embedding excluded), and a
cache hit through the gateway over HTTP (embedding included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _cache_latency import embedded_lookup, pgvector_lookup, qqp_side_a  # noqa: E402
from _cache_quality import evaluate, load_pairs, threshold_at_fpr  # noqa: E402
from _cache_verifier_train import train_verifier  # noqa: E402
from _results import RESULTS_DIR, write_results  # noqa: E402
from switchyard.cache.verifier import BUILTIN_WEIGHTS, HitVerifier  # noqa: E402
from switchyard.config.cache import CacheConfig  # noqa: E402

MIN_SIMILARITY = 0.80


async def gateway_hit(requests: int = 60) -> dict[str, float]:
    """p50 of a semantic hit (query embedded, verified) and of an exact hit, over HTTP."""
    from tests.fakes.harness import make_config, start_gateway
    from tests.fakes.server import Behaviour, FakeBackend

    backend = FakeBackend(name="a", behaviour=Behaviour(content="Paris."), models=["m1"])
    await backend.start()
    work = Path(tempfile.mkdtemp(prefix="switchyard-cachebench-"))
    cfg = make_config(work / "routes.jsonl", {"m1": [("a", backend.url)]})
    cfg["cache"] = {
        "enabled": True,
        "backend": {"type": "embedded", "path": str(work / "cache.sqlite")},
    }
    gw = await start_gateway(cfg)
    try:
        question = "What is the capital city of France?"
        await gw.chat(text=question)
        step = gw.server.config.app.state.gateway.cache
        await step.drain()
        variants = [
            question.rstrip("?"),
            question + "!",
            question.rstrip("?") + " ?",
            question.replace("?", "??"),
        ]
        for variant in variants:  # warm-up (model load, first batches)
            await gw.chat(text=variant)
        semantic: list[float] = []
        exact: list[float] = []
        kinds: list[str] = []
        for i in range(requests):
            started = time.perf_counter()
            response = await gw.chat(text=variants[i % len(variants)])
            semantic.append((time.perf_counter() - started) * 1e3)
            kinds.append(response.headers.get("x-switchyard-cache-match", "miss"))
            started = time.perf_counter()
            await gw.chat(text=question.upper())
            exact.append((time.perf_counter() - started) * 1e3)
        return {
            "semantic_p50_ms": statistics.median(semantic),
            "exact_p50_ms": statistics.median(exact),
            "semantic_hit_fraction": kinds.count("semantic") / len(kinds),
        }
    finally:
        await gw.stop()
        await backend.stop()


def _pr_plot(scores: tuple[Any, Any, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    verifier, cosine, labels = scores
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, s in (("cosine + verifier", verifier), ("cosine only", cosine)):
        order = np.argsort(-s)
        hits = labels[order] == 1
        tp = np.cumsum(hits)
        fp = np.cumsum(~hits)
        ax.plot(fp / max(1, (~hits).sum()), tp / max(1, hits.sum()), label=name)
    ax.axvline(0.02, color="grey", linestyle=":")
    ax.axhline(0.5, color="grey", linestyle=":")
    ax.set_xlim(0, 0.2)
    ax.set_xlabel("false-hit rate (non-duplicates hit)")
    ax.set_ylabel("duplicate hit rate")
    ax.set_title("QQP test half: hit rate vs false hits")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _markdown(metrics: dict[str, float], quality: dict[str, Any], train: dict[str, float]) -> str:
    sim = quality["simulated"]
    train = train or quality.get("training", {})  # --latency-only passes the saved details
    lines = [
        "# Semantic cache benchmark",
        "",
        "QQP 20k pairs (GPTCache benchmark sample), fixed-seed split: 10k tuning / 10k test.",
        "Verifier (gradient-boosted trees over cosine, lexical/IDF features and a linear score "
        "of a*b, |a-b|) trained and thresholded on the tuning half only. Insert side A of the "
        "test pairs, query side B.",
        "",
        "Training (tuning half only, 5-fold CV grouped by query):",
        "",
        *[f"- {k}: {v:.4f}" for k, v in train.items()],
        "",
        "## Quality at the operating point (test half, full cache simulation, top-4)",
        "",
        "| mode | duplicate hit rate | false-hit rate | wrong-entry hits | precision |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in sim.items():
        lines.append(
            f"| {name} | {row['duplicate_hit_rate']:.3f} | {row['false_hit_rate']:.4f}"
            f" | {row['wrong_entry_hit_rate']:.4f} | {row['precision']:.3f} |"
        )
    target_met = metrics["false_hit_rate"] <= 0.02 and metrics["duplicate_hit_rate"] >= 0.5
    lines += [
        "",
        f"Target (false hits <= 2% with >= 50% of duplicates hit): "
        f"**{'met' if target_met else 'NOT met'}**.",
        "",
        "## Pairwise (test half)",
        "",
    ]
    lines += [f"- {k}: {v:.4f}" for k, v in quality["pairwise"].items()]
    lines += [
        "",
        "## Precision-recall (pairwise, verifier score)",
        "",
        "| threshold | precision | recall | false-hit rate |",
        "|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {p['threshold']:.4f} | {p['precision']:.3f} | {p['recall']:.3f} | "
        f"{p['false_hit_rate']:.4f} |"
        for p in quality["pr_verifier"]
    ]
    lines += [
        "",
        "![hit rate vs false hits](cache_pr.png)",
        "",
        "## Metrics",
        "",
        "| metric | value |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.4f} |" for k, v in metrics.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", action="store_true", help="retrain the verifier")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-gateway", action="store_true")
    parser.add_argument(
        "--quality-only",
        action="store_true",
        help="keep the latency metrics of the last results file",
    )
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="keep the quality metrics of the last results file",
    )
    args = parser.parse_args()
    if args.latency_only:
        _latency_only(args)
        return

    data = load_pairs()
    train_info: dict[str, float] = {}
    if args.train or not BUILTIN_WEIGHTS.is_file():
        verifier, train_info = train_verifier(data)
        verifier.save(BUILTIN_WEIGHTS)
    verifier = HitVerifier.load(BUILTIN_WEIGHTS)
    tune_cosine = (data.va[data.tune] * data.vb[data.tune]).sum(axis=1)
    cosine_threshold = threshold_at_fpr(tune_cosine, data.label[data.tune], 0.02)
    quality = evaluate(data, verifier, cosine_threshold, MIN_SIMILARITY)
    sim = quality["simulated"]
    metrics: dict[str, float] = {
        "semantic_threshold": verifier.threshold,
        "min_similarity": MIN_SIMILARITY,
        "false_hit_rate": sim["verifier"]["false_hit_rate"],
        "duplicate_hit_rate": sim["verifier"]["duplicate_hit_rate"],
        "exact_only_duplicate_hit_rate": sim["exact"]["duplicate_hit_rate"],
        "exact_only_false_hit_rate": sim["exact"]["false_hit_rate"],
        "cosine_only_threshold": cosine_threshold,
        "cosine_only_false_hit_rate": sim["cosine"]["false_hit_rate"],
        "cosine_only_duplicate_hit_rate": sim["cosine"]["duplicate_hit_rate"],
    }
    print(metrics, flush=True)
    if args.quality_only:
        previous = json.loads((RESULTS_DIR / "cache.json").read_text(encoding="utf-8"))
        kept = {k: v for k, v in previous["metrics"].items() if k not in metrics}
        metrics.update(kept)
        _pr_plot(quality["scores"], RESULTS_DIR / "cache_pr.png")
        previous_details = previous.get("details", {})
        train_info = train_info or previous_details.get("training", {})
        extra = {
            "simulated": sim,
            "pairwise": quality["pairwise"],
            "pr_verifier": quality["pr_verifier"],
            "pr_cosine": quality["pr_cosine"],
            "training": train_info,
            **{
                k: previous_details[k]
                for k in ("embedded", "pgvector", "gateway_hit")
                if k in previous_details
            },
            "latency_from": previous_details.get("latency_from", previous["generated_at"]),
        }
        write_results("cache", metrics, _markdown(metrics, quality, train_info), extra)
        return
    latency = _latency(args, data.a, verifier, metrics)
    _pr_plot(quality["scores"], RESULTS_DIR / "cache_pr.png")
    extra = {
        "simulated": sim,
        "pairwise": quality["pairwise"],
        "pr_verifier": quality["pr_verifier"],
        "pr_cosine": quality["pr_cosine"],
        **latency,
    }
    write_results("cache", metrics, _markdown(metrics, quality, train_info), extra)


def _latency(
    args: argparse.Namespace, texts: list[str], verifier: HitVerifier, metrics: dict[str, float]
) -> dict[str, dict[str, float]]:
    """Embedded, pgvector and gateway-hit latency into `metrics`; returns their details."""
    cfg = CacheConfig(enabled=True, threshold=verifier.threshold, min_similarity=MIN_SIMILARITY)
    embedded = asyncio.run(embedded_lookup(texts, verifier, cfg, n=args.entries))
    details = {"embedded": embedded}
    metrics["embedded_lookup_p50_ms_100k"] = embedded["p50_ms"]
    metrics["embedded_lookup_p99_ms_100k"] = embedded["p99_ms"]
    print(embedded, flush=True)
    if not args.skip_pg:
        pg = asyncio.run(pgvector_lookup(n=args.entries))
        metrics["pgvector_lookup_p50_ms_100k"] = pg["p50_ms"]
        metrics["pgvector_lookup_p99_ms_100k"] = pg["p99_ms"]
        details["pgvector"] = pg
        print(pg, flush=True)
    if not args.skip_gateway:
        hit = asyncio.run(gateway_hit())
        metrics["gateway_hit_p50_ms"] = hit["semantic_p50_ms"]
        metrics["gateway_exact_hit_p50_ms"] = hit["exact_p50_ms"]
        metrics["gateway_semantic_hit_fraction"] = hit["semantic_hit_fraction"]
        details["gateway_hit"] = hit
        print(hit, flush=True)
    metrics["entries"] = float(args.entries)
    return details


def _latency_only(args: argparse.Namespace) -> None:
    """Rerun the latency part; quality metrics and details come from the last results file."""
    previous = json.loads((RESULTS_DIR / "cache.json").read_text(encoding="utf-8"))
    metrics: dict[str, float] = dict(previous["metrics"])
    details: dict[str, Any] = dict(previous.get("details", {}))
    texts = qqp_side_a()  # entry texts only: their vectors are synthetic here
    details.update(_latency(args, texts, HitVerifier.load(BUILTIN_WEIGHTS), metrics))
    details["quality_from"] = details.get("quality_from", previous["generated_at"])
    details.pop("latency_from", None)
    write_results("cache", metrics, _markdown(metrics, details, {}), details)


if __name__ == "__main__":
    main()
