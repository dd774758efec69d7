"""Semantic-signal commands: `train-signal domain|jailbreak` and `config check`."""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from switchyard.config.schema import SwitchyardConfig


class TrainableSignal(StrEnum):
    domain = "domain"
    jailbreak = "jailbreak"


def _weights_dir() -> Path:
    return Path(__file__).resolve().parent / "signals" / "weights"


def train_signal(
    signal: Annotated[TrainableSignal, typer.Argument(help="which classifier to train")],
    data_dir: Annotated[
        Path | None, typer.Option(help="shared data directory (default ../shared/data)")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option(help="where to write the .npz weights (default: bundled)")
    ] = None,
    seed: Annotated[int, typer.Option(help="split and solver seed")] = 0,
    cache_dir: Annotated[Path | None, typer.Option(help="corpus embedding cache")] = None,
) -> None:
    """Train a signal classifier over MiniLM embeddings; deterministic for a given seed."""
    from switchyard.signals import training
    from switchyard.signals.datasets import default_data_dir

    data = data_dir or default_data_dir()
    if not data.is_dir():
        typer.echo(f"error: data directory {data} not found (use --data-dir)", err=True)
        raise typer.Exit(2)
    target = out_dir or _weights_dir()
    if signal is TrainableSignal.domain:
        report = training.train_domain(data, seed=seed, cache_dir=cache_dir, progress=True)
        report.head.save(target / "domain.npz")
    else:
        report, detail = training.train_jailbreak(data, seed, cache_dir=cache_dir, progress=True)
        report.head.save(target / "jailbreak.npz")
        detail.save(target / "jailbreak_detail.npz")
    typer.echo(json.dumps({"metrics": report.metrics, **report.tables}, indent=2, default=str))
    typer.echo(f"weights written to {target}")


def _load(path: Path) -> SwitchyardConfig:
    from switchyard.config import load_config
    from switchyard.errors import ConfigError

    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(2) from None


def _read_examples(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        text = row.get("prompt", row.get("text"))
        if not isinstance(text, str):
            raise typer.BadParameter(f"{path}:{number}: needs a string `prompt` (or `text`)")
        rows.append({"prompt": text, "expected": row.get("expected")})
    return rows


async def _signals_for(config: SwitchyardConfig, base: Path, prompts: list[str]) -> list[Any]:
    from switchyard.signals.base import SignalContext
    from switchyard.signals.runner import SignalRunner
    from switchyard.signals.semantic import wait_until_ready
    from switchyard.types import ChatMessage, RequestView

    runner = SignalRunner.from_config(config.routing, SignalContext(config_dir=base))
    await wait_until_ready(runner.signals.values())  # models load before the first timeout
    try:
        results = []
        for index, prompt in enumerate(prompts):
            view = RequestView(f"example-{index}", "auto", messages=(ChatMessage("user", prompt),))
            results.append(await runner.evaluate(view))
        return results
    finally:
        await runner.aclose()


def check(
    file: Annotated[Path, typer.Argument(help="YAML configuration file")],
    examples: Annotated[
        Path | None,
        typer.Option(help="JSONL of {prompt, expected?}: report decisions that fire together"),
    ] = None,
) -> None:
    """Report unreachable, shadowed and ambiguous decisions and unused signals; exit 1 if any."""
    from switchyard.routing.conflicts import check_policy, cofiring

    config = _load(file)
    console = Console()
    findings = check_policy(config.routing)
    for finding in findings:
        note = " (checked on a sample of signal states)" if finding.sampled else ""
        console.print(f"[yellow]{finding.kind}[/yellow]: {finding.message}{note}", highlight=False)
    if not findings:
        console.print(f"{file}: no policy conflicts found")
    if examples is not None:
        rows = _read_examples(examples)
        results = asyncio.run(
            _signals_for(config, file.resolve().parent, [r["prompt"] for r in rows])
        )
        report = cofiring(config.routing, results)
        _print_cofiring(console, report, rows, results, config)
    raise typer.Exit(1 if findings else 0)


def _print_cofiring(
    console: Console, report: Any, rows: list[dict[str, Any]], results: list[Any], config: Any
) -> None:
    from switchyard.routing.engine import RoutingPolicy, decide

    table = Table(title=f"decisions firing together on {report.examples} examples")
    table.add_column("decision A")
    table.add_column("decision B")
    table.add_column("examples", justify="right")
    for (first, second), count in sorted(report.pairs.items(), key=lambda kv: -kv[1]):
        table.add_row(first, second, str(count))
    console.print(table)
    if report.never_fired:
        console.print(f"never fired on these examples: {', '.join(report.never_fired)}")
    policy = RoutingPolicy.from_config(config.routing)
    per_example = Table(title="per example")
    for column in ("prompt", "fired", "chosen", "expected"):
        per_example.add_column(column)
    for row, fired, signals in zip(rows, report.fired, results, strict=True):
        prompt = row["prompt"] if len(row["prompt"]) <= 48 else row["prompt"][:45] + "..."
        chosen = decide(signals, policy).name
        per_example.add_row(prompt, ", ".join(fired), chosen, row["expected"] or "")
    console.print(per_example)
    labelled = [(row, res) for row, res in zip(rows, results, strict=True) if row["expected"]]
    if labelled:
        hits = sum(decide(res, policy).name == row["expected"] for row, res in labelled)
        console.print(f"expected decision chosen: {hits}/{len(labelled)}")


def register(app: typer.Typer) -> None:
    from switchyard.cli_core import config_app

    app.command("train-signal")(train_signal)
    config_app.command("check")(check)
