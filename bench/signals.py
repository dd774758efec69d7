"""Semantic signals: quality bars and latency/throughput with every ML signal on.

    python bench/signals.py              # full run (writes bench/results/signals.*)
    python bench/signals.py --quick      # fewer requests (smoke test)
    python bench/signals.py --perf-only  # latency/throughput only, printed (nothing written)

Quality (see bench/_signals_quality.py): domain accuracy on vllm_sr_domain_eval.jsonl (never
trained on), jailbreak held-out AUC / benign FPR / leave-one-source-out AUC, PII recall and
precision on the Presidio synthetic set, MT-bench accuracy of an 8-route embedding set built
from 5 hand-written examples per category.

Performance: the real SignalRunner with embedding routes, domain, complexity, language,
jailbreak and PII (pattern policy) signals. (1) single requests one after another: p50/p99 of
the whole evaluation; (2) 32 concurrent clients, micro-batching on vs off (max_batch 1), same
run, median of repeats. Writes bench/results/signals.json and bench/results/signals.md.

The signals serve MiniLM with int8 activations by default (`SIGNAL_PRECISION`); the trained heads
and the quality numbers above use the fp32 embeddings, so the `serving_*` metrics repeat domain,
jailbreak and MT-bench quality with the embeddings the signals actually serve.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, cast

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _results import write_results  # noqa: E402
from _signals_quality import MTBENCH_ROUTES, all_quality  # noqa: E402
from _signals_serving import serving_quality  # noqa: E402
from switchyard.config.routing import RoutingConfig  # noqa: E402
from switchyard.embed.minilm import MiniLMEmbedder  # noqa: E402
from switchyard.embed.minilm_graph import PRECISIONS, Precision  # noqa: E402
from switchyard.signals import datasets  # noqa: E402
from switchyard.signals.base import SignalContext  # noqa: E402
from switchyard.signals.runner import SignalRunner  # noqa: E402
from switchyard.signals.semantic import (  # noqa: E402
    SHARED_KEY,
    SIGNAL_MAX_TOKENS,
    SIGNAL_PRECISION,
    SharedEmbeddings,
    wait_until_ready,
)
from switchyard.types import ChatMessage, RequestView  # noqa: E402

PII_POLICY = {"EMAIL_ADDRESS": "redact", "PHONE_NUMBER": "redact", "US_SSN": "block",
              "CREDIT_CARD": "block", "IBAN_CODE": "redact"}  # fmt: skip


def all_signals_policy() -> RoutingConfig:
    signals: list[dict[str, Any]] = [
        {"name": "intent", "type": "embedding", "threshold": 0.4,
         "routes": [{"name": n, "examples": e} for n, e in MTBENCH_ROUTES.items()]},
        {"name": "domain", "type": "domain"},
        {"name": "complexity", "type": "complexity"},
        {"name": "language", "type": "language"},
        {"name": "jailbreak", "type": "jailbreak"},
        {"name": "pii", "type": "pii", "policies": PII_POLICY},
    ]  # fmt: skip
    for signal in signals:  # measure the work, not the timeouts of an overloaded machine
        signal["timeout_s"] = 60.0
    decisions = [
        {"name": f"use_{s['name']}", "priority": i, "when": {"signal": s["name"]}, "model": "m"}
        for i, s in enumerate(signals)
    ]
    raw = {"signals": signals, "decisions": decisions, "default": "m"}
    return RoutingConfig.model_validate(raw)


def prompts(data_dir: Path, count: int) -> list[str]:
    benign = [
        str(r["text"]) for r in datasets.read_jsonl(data_dir / "safety" / "benign_prompts.jsonl")
    ]
    return [benign[i % len(benign)] for i in range(count)]


async def build_runner(model: MiniLMEmbedder, batching: bool) -> SignalRunner:
    context = SignalContext()
    context.resources[SHARED_KEY] = SharedEmbeddings(
        model=model, batching=batching, precision=model_precision(model)
    )
    runner = SignalRunner.from_config(all_signals_policy(), context)
    await wait_until_ready(runner.signals.values())
    warm = RequestView("warm", "auto", messages=(ChatMessage("user", "warm up"),))
    for _ in range(3):  # loads PII/language and embeds route examples before timing
        result = await runner.evaluate(warm)
    errors = {name: r.error for name, r in result.items() if r.error}  # none allowed below too
    if errors:
        raise RuntimeError(f"signal errors during warm-up: {errors}")
    return runner


def model_precision(model: MiniLMEmbedder) -> Precision:
    return "int8" if model.graph == "fused-int8" else "fp32"


def view(index: int, text: str, tag: str = "req") -> RequestView:
    return RequestView(f"{tag}-{index}", "auto", messages=(ChatMessage("user", text),))


async def sequential_latency(
    runner: SignalRunner, texts: list[str], tag: str = "single"
) -> dict[str, float]:
    samples: list[float] = []
    cpu_started = time.process_time()
    for index, text in enumerate(texts):
        started = time.perf_counter()
        await runner.evaluate(view(index, text, tag))
        samples.append((time.perf_counter() - started) * 1000)
    cpu_ms = (time.process_time() - cpu_started) * 1000 / len(texts)
    samples.sort()
    return {
        "p50": samples[len(samples) // 2],
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "cpu_ms": cpu_ms,
    }


def batches_run(runner: SignalRunner) -> int:
    shared = (
        cast(SharedEmbeddings, runner.context.resources[SHARED_KEY]) if runner.context else None
    )
    batcher = shared._batcher if shared is not None else None
    return batcher.batches_run if batcher is not None else 0


async def concurrent_throughput(
    runner: SignalRunner, texts: list[str], clients: int, tag: str = "c32"
) -> tuple[float, float]:
    """Requests per second, and process CPU milliseconds per request (all threads).

    `tag` makes the request ids unique per run: the per-request embedding and PII caches must
    never serve a request from an earlier run of the same text."""
    queue = list(enumerate(texts))
    queue.reverse()

    async def client() -> None:
        while queue:
            index, text = queue.pop()
            results = await runner.evaluate(view(index, text, tag))
            failed = [name for name, result in results.items() if result.error]
            if failed:
                raise RuntimeError(f"signals failed under load: {failed}")

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client() for _ in range(clients)))
    cpu_ms = (time.process_time() - cpu_started) * 1000 / len(texts)
    return len(texts) / (time.perf_counter() - started), cpu_ms


async def performance(data_dir: Path, quick: bool, precision: Precision) -> dict[str, Any]:
    model = MiniLMEmbedder(max_length=SIGNAL_MAX_TOKENS, threads=2, precision=precision)
    singles = prompts(data_dir, 60 if quick else 300)
    load = prompts(data_dir, 128 if quick else 640)
    repeats = 1 if quick else 3
    batched = await build_runner(model, batching=True)
    unbatched = await build_runner(model, batching=False)
    latency = await sequential_latency(batched, singles)
    rps_on: list[float] = []
    rps_off: list[float] = []
    cpu_on: list[float] = []
    cpu_off: list[float] = []
    batches_before = batches_run(batched)
    for repeat in range(repeats):
        rps, cpu = await concurrent_throughput(batched, load, 32, f"on{repeat}")
        rps_on.append(rps)
        cpu_on.append(cpu)
        rps, cpu = await concurrent_throughput(unbatched, load, 32, f"off{repeat}")
        rps_off.append(rps)
        cpu_off.append(cpu)
    batch_count = max(1, batches_run(batched) - batches_before)
    embedding_only = await sequential_latency(await build_embed_only(model), singles, "embed")
    await batched.aclose()
    await unbatched.aclose()
    on, off = statistics.median(rps_on), statistics.median(rps_off)
    return {
        "latency_p50_ms_all_signals": latency["p50"],
        "latency_p99_ms_all_signals": latency["p99"],
        "cpu_ms_per_request_single": latency["cpu_ms"],
        "latency_p50_ms_embedding_signals_only": embedding_only["p50"],
        "throughput_rps_c32": on,
        "throughput_rps_c32_unbatched": off,
        "batching_speedup_c32": on / off,
        "requests_per_batch_c32": repeats * len(load) / batch_count,
        "cpu_ms_per_request_c32": statistics.median(cpu_on),
        "cpu_ms_per_request_c32_unbatched": statistics.median(cpu_off),
        # what 2 otherwise idle cores could sustain at that CPU cost (an estimate, not a run)
        "estimated_rps_c32_two_idle_cores": 2000.0 / statistics.median(cpu_on),
        "embedding_int8_activations": float(model.graph == "fused-int8"),
        "load_average_1m_at_end": os.getloadavg()[0],
    }


async def build_embed_only(model: MiniLMEmbedder) -> SignalRunner:
    policy = all_signals_policy()
    keep = {"intent", "domain", "complexity", "jailbreak"}
    trimmed = RoutingConfig.model_validate({
        "signals": [s.model_dump() for s in policy.signals if s.name in keep],
        "decisions": [d.model_dump(by_alias=True) for d in policy.decisions
                      if d.when.signal in keep],
        "default": "m",
    })  # fmt: skip
    context = SignalContext()
    context.resources[SHARED_KEY] = SharedEmbeddings(model=model, precision=model_precision(model))
    runner = SignalRunner.from_config(trimmed, context)
    await wait_until_ready(runner.signals.values())
    await runner.evaluate(view(-1, "warm up"))
    return runner


def markdown(metrics: dict[str, float], quality: dict[str, Any]) -> str:
    from _signals_report import render

    return render(metrics, quality)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--perf-only", action="store_true")
    parser.add_argument("--precision", choices=PRECISIONS, default=SIGNAL_PRECISION)
    parser.add_argument("--data-dir", type=Path, default=datasets.default_data_dir())
    args = parser.parse_args()
    started = time.perf_counter()
    if args.perf_only:
        metrics = asyncio.run(performance(args.data_dir, args.quick, args.precision))
        print(json.dumps(metrics, indent=2))
        return
    # performance first, in a fresh process like a gateway's: the quality part leaves large
    # corpora and models on the heap that slow every later garbage collection
    performance_metrics = asyncio.run(performance(args.data_dir, args.quick, args.precision))
    quality = all_quality(args.data_dir)
    metrics: dict[str, float] = {}
    for section in quality.values():
        metrics.update(section["metrics"])
    metrics.update(serving_quality(args.data_dir, args.precision))
    metrics.update(performance_metrics)
    write_results("signals", metrics, markdown(metrics, quality), extra=quality)
    print(markdown(metrics, quality))
    print(f"bench/signals.py took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
