"""`switchyard simulate`: replay a trace through balancers onto simulated replicas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from switchyard.sim.capacity import search_capacity
from switchyard.sim.engine import PoolSpec, SimResult, simulate
from switchyard.sim.metrics import Summary, summarize
from switchyard.sim.plots import plot_runs
from switchyard.sim.policies import balancer_factory
from switchyard.sim.profiles import Profile, load_profile
from switchyard.sim.workloads import Workload, load_trace

SHOWN = ("ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_p90_ms", "e2e_p90_s", "slo_attainment",
         "goodput_rps", "prefix_hit_rate", "load_imbalance", "migrations", "gpu_hours",
         "energy_kwh", "wall_s")


def _pools(policy: str, profile: Profile, replicas: int, slo: float, split_tokens: int | None,
           long_replicas: int) -> list[PoolSpec]:
    factory = balancer_factory(policy, profile, slo)
    if split_tokens is None:
        return [PoolSpec("pool", replicas, profile, factory)]
    return [PoolSpec("short", replicas, profile, factory, max_prompt_tokens=split_tokens),
            PoolSpec("long", long_replicas, profile, balancer_factory(policy, profile, slo))]


def _run_with_progress(workload: Workload, pools: list[PoolSpec], label: str,
                       console: Console) -> SimResult:
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task(label, total=len(workload))
        return simulate(workload, pools, lambda n: progress.advance(task, n))


def _table(rows: dict[str, Summary], title: str) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    for name in rows:
        table.add_column(name, justify="right")
    for key in SHOWN:
        table.add_row(key, *[f"{getattr(s, key):.3f}" for s in rows.values()])
    return table


def simulate_command(
    trace: Annotated[Path, typer.Argument(help="Mooncake .jsonl or Azure .csv trace")],
    policy: Annotated[list[str], typer.Option("--policy", "-p", help="balancer type(s)")] = [  # noqa: B006
        "least_pending_tokens", "dualmap"],
    replicas: Annotated[int, typer.Option(help="replicas (short pool if --split-tokens)")] = 8,
    profile: Annotated[str, typer.Option(help="profile name or YAML/JSON path")] = "reference",
    kv_scale: Annotated[float, typer.Option(help="multiply the profile's KV capacity")] = 1.0,
    rate_scale: Annotated[float, typer.Option(help="multiply the trace's arrival rate")] = 1.0,
    slo: Annotated[float, typer.Option(help="P90 TTFT SLO in seconds")] = 5.0,
    capacity: Annotated[bool, typer.Option(help="search the largest rate within the SLO")] = False,
    split_tokens: Annotated[int | None, typer.Option(help="short/long pool split")] = None,
    long_replicas: Annotated[int, typer.Option(help="replicas in the long pool")] = 2,
    plot: Annotated[Path | None, typer.Option(help="write TTFT CDF / load PNG here")] = None,
    limit: Annotated[int | None, typer.Option(help="replay only the first N requests")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Replay TRACE through each balancer policy and report latency, cache hits and load."""
    console = Console(stderr=as_json)
    replica_profile = load_profile(profile)
    if kv_scale != 1.0:
        replica_profile = replica_profile.scaled_kv(kv_scale)
    workload = load_trace(trace)
    if limit is not None:
        workload = workload.head(limit)
    summaries: dict[str, Summary] = {}
    runs: dict[str, SimResult] = {}
    capacities: dict[str, float] = {}
    for name in policy:
        def pools(name: str = name) -> list[PoolSpec]:
            return _pools(name, replica_profile, replicas, slo, split_tokens, long_replicas)

        if capacity:
            with console.status(f"capacity search: {name}"):
                found = search_capacity(workload, pools, slo)
            capacities[name] = found.scale
            summaries[name] = found.summary_at_scale
        else:
            scaled = workload.scaled(rate_scale)
            runs[name] = _run_with_progress(scaled, pools(), name, console)
            summaries[name] = summarize(runs[name], slo)
    if plot is not None and runs:
        plot_runs(runs, plot, slo, f"{workload.name} x{rate_scale:g}")
    if as_json:
        payload = {name: s.as_dict() for name, s in summaries.items()}
        for name, scale in capacities.items():
            payload[name]["capacity_scale"] = scale
        typer.echo(json.dumps(payload, indent=2))
        return
    title = f"{workload.name}: {len(workload)} requests, profile {replica_profile.name}"
    console.print(_table(summaries, title))
    for name, scale in capacities.items():
        console.print(f"capacity {name}: x{scale:.3f} of the trace arrival rate")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)
