"""Gateway overhead: direct to a fake backend vs through switchyard vs through the LiteLLM proxy.

Every server runs in its own process: the fake OpenAI backend (fixed ~1 KB answer, or 64 SSE
chunks), `switchyard serve` (rules only, one uvicorn worker with uvloop + httptools) and the
LiteLLM proxy (one worker, installed by this script into bench/.work/litellm-venv). The same
closed-loop load generator (bench/overhead_loadgen.py, its own process) drives every target at
each concurrency; each cell is repeated and the median is reported.

    python bench/overhead.py                  # full run (~6-8 min on 2 cores)
    python bench/overhead.py --quick          # 1 repeat, short cells, smoke test
    python bench/overhead.py --skip-litellm   # switchyard vs direct only

Writes bench/results/overhead.json and bench/results/overhead.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

from tests.fakes.harness import free_port  # noqa: E402

from _results import write_results  # noqa: E402

WORK = BENCH / ".work"
LITELLM_VENV = WORK / "litellm-venv"
MODEL = "fake-model"
FIRST_CHUNK_GAP_MS = 2.0  # streams: first event, a pause, then the other 65 events at once
TARGETS = ("direct", "switchyard", "litellm")
API_KEY = "sk-bench-" + secrets.token_hex(24)  # both gateways authenticate every request
Cell = dict[str, float]


def ensure_litellm() -> Path:
    """Install `litellm[proxy]` into its own venv once; return the `litellm` executable."""
    executable = LITELLM_VENV / "bin" / "litellm"
    if executable.exists():
        return executable
    print("installing litellm[proxy] into", LITELLM_VENV, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(LITELLM_VENV)], check=True)
    pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "litellm[proxy]"], check=True)
    return executable


def _pinned(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def start(cmd: Sequence[str], name: str, cpu: int | None, env: dict[str, str] | None = None,
          ) -> subprocess.Popen[bytes]:
    log = open(WORK / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DATABASE_URL", None)  # LiteLLM would try to use it
    return subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            env=full_env, preexec_fn=_pinned(cpu))


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited early; see {WORK}/*.log")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s} s")


def switchyard_config(backend_url: str, records: Path) -> dict[str, Any]:
    """Rules only: keyword and context-length signals, three decisions, one model."""
    return {
        "server": {"host": "127.0.0.1", "port": 0, "api_keys": {API_KEY: "bench"}},
        "models": [{"name": MODEL, "pool": "fake", "input_usd_per_mtok": 0.5,
                    "output_usd_per_mtok": 1.5}],
        "pools": [{"name": "fake", "endpoints": [{"name": "fake-1", "url": backend_url}],
                   "health": {"interval_s": 5.0}}],
        "routing": {
            "signals": [
                {"name": "code", "type": "keyword", "keywords": ["python", "stack trace", "bug"]},
                {"name": "secret", "type": "keyword", "keywords": ["password", "api key"]},
                {"name": "tools", "type": "tools"},
            ],
            "decisions": [
                {"name": "blocked", "priority": 100, "when": {"signal": "secret"},
                 "action": "block"},
                {"name": "coding", "priority": 10,
                 "when": {"any": [{"signal": "code"}, {"signal": "tools"}]}, "model": MODEL},
            ],
            "default": MODEL,
        },
        "records": {"path": str(records)},
    }


def litellm_config(backend_url: str) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": MODEL, "litellm_params": {
            "model": f"openai/{MODEL}", "api_base": backend_url, "api_key": "sk-fake"}}],
        "litellm_settings": {"telemetry": False, "drop_params": True},
        "general_settings": {"master_key": API_KEY},
    }


class Stack:
    """The fake backend and the gateways under test, each in its own pinned process."""

    def __init__(self, with_litellm: bool, pin: bool) -> None:
        self.pin = pin
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: dict[str, str] = {}
        self.pids: dict[str, int] = {}
        self.with_litellm = with_litellm

    def __enter__(self) -> Stack:
        try:
            self._start_all()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start_all(self) -> None:
        WORK.mkdir(parents=True, exist_ok=True)
        python = sys.executable
        port = free_port()
        backend = start([python, "-m", "tests.fakes.server", "--port", str(port),
                         "--models", MODEL, "--content-bytes", "800", "--chunks", "64",
                         "--stream-content", "tok", "--first-chunk-gap-ms",
                         str(FIRST_CHUNK_GAP_MS), "--no-record"], "backend", self.cpu(1))
        self.processes.append(backend)
        backend_url = f"http://127.0.0.1:{port}/v1"
        wait_ready(backend_url + "/models", backend)
        self.urls["direct"] = backend_url
        self.pids["direct"] = backend.pid
        self._start_switchyard(backend_url)
        if self.with_litellm:
            self._start_litellm(backend_url)

    def cpu(self, cpu: int) -> int | None:
        return cpu if self.pin else None

    def _start_switchyard(self, backend_url: str) -> None:
        config = WORK / "overhead-switchyard.yaml"
        records = WORK / "overhead-records.jsonl"
        records.unlink(missing_ok=True)
        config.write_text(yaml.safe_dump(switchyard_config(backend_url, records)))
        port = free_port()
        process = start([sys.executable, "-m", "switchyard.cli", "serve", "--config",
                         str(config), "--port", str(port), "--log-level", "warning"],
                        "switchyard", self.cpu(0))
        self.processes.append(process)
        wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        self.urls["switchyard"] = f"http://127.0.0.1:{port}/v1"
        self.pids["switchyard"] = process.pid

    def _start_litellm(self, backend_url: str) -> None:
        executable = ensure_litellm()
        config = WORK / "overhead-litellm.yaml"
        config.write_text(yaml.safe_dump(litellm_config(backend_url)))
        port = free_port()
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
               "LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION", "NO_DOCS": "True"}
        process = start([str(executable), "--config", str(config), "--host", "127.0.0.1",
                         "--port", str(port), "--num_workers", "1"], "litellm", self.cpu(0), env)
        self.processes.append(process)
        wait_ready(f"http://127.0.0.1:{port}/health/liveliness", process, timeout_s=180)
        self.urls["litellm"] = f"http://127.0.0.1:{port}/v1"
        self.pids["litellm"] = process.pid

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_cell(url: str, model: str, concurrency: int, stream: bool, duration_s: float,
             warmup_s: float, cpu: int | None, max_window_s: float = 0.0,
             server_pid: int | None = None) -> Cell:
    cmd = [sys.executable, str(BENCH / "overhead_loadgen.py"), "--url",
           url + "/chat/completions", "--model", model, "--concurrency", str(concurrency),
           "--duration-s", str(duration_s), "--warmup-s", str(warmup_s),
           "--header", f"authorization:Bearer {API_KEY}",
           "--max-window-s", str(max_window_s or 4 * duration_s)]
    if stream:
        cmd.append("--stream")
    cpu_before = process_cpu_s(server_pid) if server_pid else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         preexec_fn=_pinned(cpu),
                         timeout=max_window_s + 4 * duration_s + warmup_s + 120)
    result: Cell = json.loads(out.stdout)
    if server_pid:
        used = process_cpu_s(server_pid) - cpu_before
        result["server_cpu_ms_per_request"] = 1e3 * used / max(result["answered_total"], 1)
    return result


def median_cells(cells: list[Cell]) -> Cell:
    return {key: statistics.median(c[key] for c in cells) for key in cells[0]}


def measure(stack: Stack, args: argparse.Namespace) -> dict[str, dict[str, dict[int, Cell]]]:
    """results[mode][target][concurrency] = median cell over the repeats."""
    raw: dict[tuple[str, str, int], list[Cell]] = {}
    modes = ("json",) if args.no_stream else ("json", "stream")
    targets = [t for t in TARGETS if t in stack.urls]
    for target in targets:  # first requests pay for lazy imports and connection set-up
        model = "auto" if target == "switchyard" else MODEL
        for mode in modes:
            run_cell(stack.urls[target], model, 8, mode == "stream", 1.0, 1.0, stack.cpu(1))
    for repeat in range(args.repeats):
        for mode in modes:
            for target in targets:
                for concurrency in args.concurrency:
                    model = "auto" if target == "switchyard" else MODEL
                    slow = target == "litellm"  # give it time to answer enough requests
                    cell = run_cell(stack.urls[target], model, concurrency, mode == "stream",
                                    args.duration_s, args.warmup_s, stack.cpu(1),
                                    max(12.0, 4 * args.duration_s) if slow else 0.0,
                                    stack.pids[target])
                    raw.setdefault((mode, target, concurrency), []).append(cell)
                    print(f"repeat {repeat} {mode:6} {target:10} c={concurrency:<3} "
                          f"p50={cell['p50_ms']:.2f}ms p99={cell['p99_ms']:.2f}ms "
                          f"rps={cell['rps']:.0f} ttfb={cell['ttfb_p50_ms']:.2f}ms "
                          f"cpu/req={cell.get('server_cpu_ms_per_request', 0):.3f}ms "
                          f"errors={cell['errors']:.0f}", flush=True)
    results: dict[str, dict[str, dict[int, Cell]]] = {}
    for (mode, target, concurrency), cells in raw.items():
        results.setdefault(mode, {}).setdefault(target, {})[concurrency] = median_cells(cells)
    return results


def summarise(results: dict[str, dict[str, dict[int, Cell]]]) -> dict[str, float]:
    plain = results["json"]
    sw, direct = plain["switchyard"], plain["direct"]
    low, high = min(sw), max(sw)
    metrics: dict[str, float] = {
        f"added_latency_p50_ms_c{low}": sw[low]["p50_ms"] - direct[low]["p50_ms"],
        f"added_latency_p99_ms_c{low}": sw[low]["p99_ms"] - direct[low]["p99_ms"],
        f"added_latency_p50_ms_c{high}": sw[high]["p50_ms"] - direct[high]["p50_ms"],
        f"rps_direct_c{high}": direct[high]["rps"],
        f"rps_switchyard_c{high}": sw[high]["rps"],
    }
    for target, cells in plain.items():
        if "server_cpu_ms_per_request" in cells[high]:
            metrics[f"cpu_ms_per_request_{target}_c{high}"] = (
                cells[high]["server_cpu_ms_per_request"])
    if "litellm" in plain:
        lite = plain["litellm"]
        metrics[f"rps_litellm_c{high}"] = lite[high]["rps"]
        metrics[f"throughput_ratio_vs_litellm_c{high}"] = sw[high]["rps"] / max(
            lite[high]["rps"], 1e-9)
        metrics[f"litellm_added_latency_p50_ms_c{low}"] = (
            lite[low]["p50_ms"] - direct[low]["p50_ms"])
        if "server_cpu_ms_per_request" in lite[high] and "server_cpu_ms_per_request" in sw[high]:
            metrics[f"cpu_ratio_litellm_vs_switchyard_c{high}"] = lite[high][
                "server_cpu_ms_per_request"] / max(sw[high]["server_cpu_ms_per_request"], 1e-9)
    if "stream" in results:
        stream = results["stream"]
        metrics[f"added_ttfb_p50_ms_c{low}_stream"] = (
            stream["switchyard"][low]["ttfb_p50_ms"] - stream["direct"][low]["ttfb_p50_ms"])
        metrics[f"rps_switchyard_c{high}_stream"] = stream["switchyard"][high]["rps"]
        if "litellm" in stream:
            metrics[f"rps_litellm_c{high}_stream"] = stream["litellm"][high]["rps"]
            metrics[f"throughput_ratio_vs_litellm_c{high}_stream"] = (
                stream["switchyard"][high]["rps"] / max(stream["litellm"][high]["rps"], 1e-9))
            metrics[f"litellm_added_ttfb_p50_ms_c{low}_stream"] = (
                stream["litellm"][low]["ttfb_p50_ms"] - stream["direct"][low]["ttfb_p50_ms"])
    # a target that answered nothing in its window has NaN latencies / zero throughput
    return {k: round(v, 4) for k, v in metrics.items() if math.isfinite(v) and v < 1e9}


PINNING = "Gateways pinned to CPU 0, backend and load generator to CPU 1."
TARGET_LINES: tuple[tuple[str, str, Callable[[float], bool]], ...] = (
    ("added_latency_p50_ms_c1", "<= 1.0 ms", lambda v: v <= 1.0),
    ("throughput_ratio_vs_litellm_c64", ">= 10x", lambda v: v >= 10.0),
    ("added_ttfb_p50_ms_c1_stream", "<= 1.0 ms", lambda v: v <= 1.0),
)


def markdown(results: dict[str, dict[str, dict[int, Cell]]], metrics: dict[str, float],
             args: argparse.Namespace) -> str:
    lines = ["# Gateway overhead", "",
             f"Fake backend (~1 KB JSON answer; streams of 64 SSE content chunks, the first "
             f"event {FIRST_CHUNK_GAP_MS:g} ms before the rest, so time to first byte is not "
             f"hidden behind the whole burst), closed-loop load, "
             f"{args.duration_s:g} s per cell after {args.warmup_s:g} s warm-up, median of "
             f"{args.repeats} repeats. {PINNING if args.pin else 'No CPU pinning.'} "
             f"switchyard: `switchyard serve` (rules only, `model: auto`, records and "
             f"metrics on). LiteLLM proxy: one worker, same backend. Both gateways check a bearer "
             f"API key on every request. Server CPU ms/req: CPU time of the process that "
             f"answers the load generator (the backend for `direct`, the gateway otherwise) per "
             f"answer; unlike latency it is barely affected by other jobs on the machine.", "",
             "## Targets", "", "| metric | measured | target | met |", "|---|---|---|---|"]
    for key, target, check in TARGET_LINES:
        if key in metrics:
            value = metrics[key]
            lines.append(f"| {key} | {value:.3f} | {target} | {'yes' if check(value) else 'NO'} |")
    cpu_ratio = next((v for k, v in metrics.items() if k.startswith("cpu_ratio_litellm")), None)
    if cpu_ratio is not None:
        lines += ["", f"Throughput ratios depend on how much CPU each process gets on a shared "
                  f"machine; per answer, LiteLLM used {cpu_ratio:.0f}x the CPU time of "
                  f"switchyard (load-independent comparison)."]
    lines += ["", "## All metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in metrics.items()]
    for mode, by_target in results.items():
        lines += ["", f"## {'Streaming (64 chunks)' if mode == 'stream' else 'Non-streaming'}",
                  "", "| target | concurrency | p50 ms | p99 ms | req/s | TTFB p50 ms | "
                  "server CPU ms/req | errors |", "|---|---|---|---|---|---|---|---|"]
        for target, cells in by_target.items():
            for concurrency, cell in sorted(cells.items()):
                lines.append(
                    f"| {target} | {concurrency} | {cell['p50_ms']:.2f} | {cell['p99_ms']:.2f} | "
                    f"{cell['rps']:.0f} | {cell['ttfb_p50_ms']:.2f} | "
                    f"{cell.get('server_cpu_ms_per_request', math.nan):.3f} | "
                    f"{cell['errors']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration-s", type=float, default=2.0)
    parser.add_argument("--warmup-s", type=float, default=0.5)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 16, 64])
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--no-stream", action="store_true")
    parser.add_argument("--pin", action="store_true",
                        help="pin gateways to CPU 0, backend and load generator to CPU 1")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 1 s cells")
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.duration_s, args.warmup_s = 1, 1.0, 0.3
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up child processes
    started = time.monotonic()
    load_before = os.getloadavg()
    with Stack(with_litellm=not args.skip_litellm, pin=args.pin) as stack:
        results = measure(stack, args)
    metrics = summarise(results)
    load = {"before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()]}
    report = markdown(results, metrics, args) + (
        f"\nMachine load average (1/5/15 min) before: {load['before']}, after: {load['after']} "
        f"on {os.cpu_count()} CPUs; other jobs on the machine add noise to every cell.\n")
    print(report)
    if not args.no_write:
        details = {"results": {mode: {t: {str(c): cell for c, cell in cells.items()}
                                      for t, cells in by_target.items()}
                               for mode, by_target in results.items()},
                   "settings": {"repeats": args.repeats, "duration_s": args.duration_s,
                                "warmup_s": args.warmup_s, "concurrency": args.concurrency},
                   "load_average": load, "wall_s": round(time.monotonic() - started, 1)}
        write_results("overhead", metrics, report, details)


if __name__ == "__main__":
    main()
