"""Local model fleet benchmark: start-up times, tokens/s through the gateway, demo cost.

    python bench/local.py                # warm start, tokens/s, demo cost (≈5-10 min on 2 cores)
    python bench/local.py --first-run    # also `make run` on a fresh clone with an empty pip
                                         # cache and model cache (builds llama-cpp-python: slow)

Writes bench/results/local.{json,md}. Metrics:
- first_run_seconds: fresh clone → `make run` → /readyz answers (venv, installs, llama.cpp build,
  model download + sha256 assembly, both servers loaded). Without --first-run the previous value
  is carried over (and marked so in details).
- warm_start_seconds: a second `make run` in that clone until /readyz answers; nothing is
  rebuilt or re-downloaded (carried over like first_run_seconds).
- serve_ready_seconds: `switchyard serve` on the default config until /readyz answers.
- tokens_per_s_<model>_via_gateway: completion tokens / wall time of a non-streamed request
  through the gateway (median of repeats); the same request sent straight to the llama.cpp
  server is the baseline (`..._direct`, ratio `..._gateway_vs_direct`).
- demo_cost_ratio_vs_all_large: the demo prompts routed with `auto`, cost vs the same prompts
  really sent to the large model (prices from the config, usage from the servers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from switchyard.config.loader import load_config
from switchyard.local import default_config_path
from switchyard.local.demo import DEMO_PROMPTS, most_expensive, run_prompts

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import RESULTS_DIR, write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STORY = "Write a short story about a robot who learns to paint."
SHORT_NAMES = {"smollm2-135m": "smollm2", "qwen2.5-coder-1.5b": "qwen15"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=2.0).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready within {timeout_s}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def make_run(clone: Path, env: dict[str, str], port: int, log: Path) -> tuple[float, str]:
    """`make run` in `clone` until /readyz answers; returns seconds and leaves it stopped."""
    started = time.monotonic()
    with log.open("ab") as out:
        process = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=clone, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, timeout_s=3600)
        return time.monotonic() - started, log.read_text()[-400:]
    finally:
        stop(process)


def first_and_second_run(work: Path) -> dict[str, float]:
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(PIP_CACHE_DIR=str(work / "pip-cache"),
               SWITCHYARD_MODEL_CACHE=str(work / "model-cache"))
    port = free_port()
    logs = Path(tempfile.gettempdir())  # kept after the run, for a look at what happened
    first, _ = make_run(clone, env, port, logs / "switchyard-bench-local-first-run.log")
    second, _ = make_run(clone, env, port, logs / "switchyard-bench-local-second-run.log")
    disk = sum(f.stat().st_size for f in (work / "model-cache").iterdir())
    venv = subprocess.run(["du", "-sb", str(clone / ".venv")], capture_output=True, text=True)
    return {"first_run_seconds": round(first, 1), "warm_start_seconds": round(second, 1),
            "model_cache_bytes": disk, "venv_bytes": int(venv.stdout.split()[0])}


def bench_config(work: Path) -> tuple[Path, dict[str, int]]:
    """The default config with free ports, so the benchmark never meets a running `make run`."""
    data = yaml.safe_load(default_config_path().read_text())
    ports: dict[str, int] = {}
    for pool in data["pools"]:
        for endpoint in pool["endpoints"]:
            endpoint["port"] = ports[endpoint["model"]] = free_port()
    data["records"] = {"path": str(work / "routes.jsonl")}
    path = work / "local.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, ports


async def one_request(client: httpx.AsyncClient, model: str, max_tokens: int) -> dict[str, float]:
    body = {"model": model, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": STORY}]}
    started = time.perf_counter()
    reply = await client.post("/v1/chat/completions", json=body)
    seconds = time.perf_counter() - started
    reply.raise_for_status()
    tokens = int(reply.json()["usage"]["completion_tokens"])
    return {"seconds": round(seconds, 3), "completion_tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 2)}


async def measure(url: str, ports: dict[str, int], repeats: int,
                  max_tokens: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Per model: one warm-up request (discarded; the first one after a start pays for paging
    the model in), then gateway and direct requests interleaved, so drift on this shared
    machine hits both alike."""
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {}
    for model, short in SHORT_NAMES.items():
        runs: dict[str, list[dict[str, float]]] = {"via_gateway": [], "direct": []}
        async with httpx.AsyncClient(base_url=url, timeout=900, trust_env=False) as gateway, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[model]}", timeout=900,
                                  trust_env=False) as direct:
            await one_request(direct, model, max_tokens)
            for _ in range(repeats):
                runs["via_gateway"].append(await one_request(gateway, model, max_tokens))
                runs["direct"].append(await one_request(direct, model, max_tokens))
        via = statistics.median(r["tokens_per_s"] for r in runs["via_gateway"])
        straight = statistics.median(r["tokens_per_s"] for r in runs["direct"])
        metrics[f"tokens_per_s_{short}_via_gateway"] = round(via, 2)
        metrics[f"tokens_per_s_{short}_direct"] = round(straight, 2)
        metrics[f"tokens_per_s_{short}_gateway_vs_direct"] = round(via / straight, 3)
        details[f"runs_{short}"] = runs
    return metrics, details


async def demo_costs(url: str, config: Path) -> tuple[float, dict[str, Any]]:
    models = load_config(config).model_by_name()
    large = most_expensive(models)
    routed = await run_prompts(url, DEMO_PROMPTS)
    baseline = await run_prompts(url, DEMO_PROMPTS, model=large.name)
    routed_cost = sum(r.cost_usd(models) for r in routed)
    large_cost = sum(r.cost_usd(models) for r in baseline)
    rows = [{"prompt": r.prompt, "decision": r.decision, "model": r.model,
             "latency_s": round(r.latency_s, 2), "first_line": r.first_line[:120],
             "large_latency_s": round(b.latency_s, 2)} for r, b in zip(routed, baseline,
                                                                         strict=True)]
    return routed_cost / large_cost, {"demo": rows, "demo_routed_usd": routed_cost,
                                      "demo_all_large_usd": large_cost}


def previous_metrics() -> dict[str, Any]:
    path = RESULTS_DIR / "local.json"
    return dict(json.loads(path.read_text())["metrics"]) if path.exists() else {}


def markdown(metrics: dict[str, float], details: dict[str, Any]) -> str:
    lines = ["# Local model fleet (llama.cpp, 1 thread per model, 2-core machine)", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in metrics.items()]
    lines += ["", "## Demo (auto vs all-large)", "",
              "| prompt | decision | model | latency s | all-large latency s | first line |",
              "|---|---|---|---|---|---|"]
    for row in details.get("demo", []):
        lines.append(f"| {row['prompt']} | {row['decision']} | {row['model']} | "
                     f"{row['latency_s']} | {row['large_latency_s']} | "
                     f"{row['first_line'].replace('|', '/')} |")
    lines += ["", f"first_run: {details.get('first_run_note', '')}", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first-run", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-local-") as tmp:
        work = Path(tmp)
        if args.first_run:
            runs = first_and_second_run(work)
            metrics.update({k: runs[k] for k in ("first_run_seconds", "warm_start_seconds")})
            details.update(runs, first_run_note="measured now: fresh clone, empty pip cache")
            # Saved at once: the slow part survives a failure in the measurements below.
            write_results("local", dict(metrics), markdown(metrics, details), details)
        else:
            old = previous_metrics()
            for key in ("first_run_seconds", "warm_start_seconds"):
                if key in old:
                    metrics[key] = old[key]
            details["first_run_note"] = "carried over from the previous --first-run"
        config, ports = bench_config(work)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [str(REPO / ".venv/bin/switchyard"), "serve", "--config", str(config),
             "--port", str(port), "--log-level", "warning"],
            start_new_session=True)
        try:
            ready = wait_ready(url, server, timeout_s=600)
            metrics["serve_ready_seconds"] = round(ready, 1)
            speed, speed_details = asyncio.run(measure(url, ports, args.repeats,
                                                       args.max_tokens))
            ratio, demo_details = asyncio.run(demo_costs(url, config))
        finally:
            stop(server)
        metrics.update(speed)
        metrics["demo_cost_ratio_vs_all_large"] = round(ratio, 3)
        details.update(speed_details, **demo_details)
        shutil.rmtree(work / "clone", ignore_errors=True)
    path = write_results("local", metrics, markdown(metrics, details), details)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
