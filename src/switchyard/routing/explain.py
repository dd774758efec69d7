"""Explaining a decision: every signal result, every trace entry, the winner and its reason.

`decision_to_dict` is the JSON shape of `POST /v1/route`; `explain_table` renders the same
content as one rich table for `switchyard route`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from switchyard.types import Decision, SignalResult, TraceEntry


def signal_to_dict(result: SignalResult) -> dict[str, Any]:
    return {
        "labels": list(result.labels),
        "value": result.value,
        "score": result.score,
        "confidence": result.confidence,
        "latency_ms": round(result.latency_ms, 4),
        "error": result.error,
        "details": dict(result.details),
    }


def trace_entry_to_dict(entry: TraceEntry) -> dict[str, Any]:
    return {
        "path": entry.path,
        "condition": entry.condition,
        "value": entry.value,
        "observed": entry.observed,
    }


def decision_to_dict(decision: Decision, signals: Mapping[str, SignalResult]) -> dict[str, Any]:
    """Plain JSON-ready data: the decision, each signal's result, and the full trace."""
    return {
        "decision": {
            "name": decision.name,
            "action": str(decision.action),
            "models": list(decision.models),
            "priority": decision.priority,
            "message": decision.message,
            "reason": decision.reason,
        },
        "signals": {name: signal_to_dict(result) for name, result in signals.items()},
        "trace": [trace_entry_to_dict(entry) for entry in decision.trace],
    }


def _bool_text(value: bool) -> Text:
    return Text("true", style="green") if value else Text("false", style="red")


def _signal_summary(result: SignalResult) -> str:
    parts = [f"labels=[{', '.join(result.labels)}]" if result.labels else "no labels"]
    if result.value is not None:
        parts.append(f"value={result.value:g}")
    if result.score:
        parts.append(f"score={result.score:.3g}")
    if result.error is not None:
        parts.append(f"error: {result.error}")
    return "  ".join(parts)


def explain_table(decision: Decision, signals: Mapping[str, SignalResult]) -> Table:
    """One table: signals, then evaluated conditions, then the winner with its reason."""
    target = ", ".join(decision.models) if decision.models else "-"
    # Every cell is a Text so that brackets in paths and labels are never read as rich markup.
    table = Table(
        title=Text(f"decision {decision.name!r} ({decision.action}) -> {target}"),
        caption=Text(decision.reason),
        show_lines=False,
    )
    table.add_column("kind", style="dim", no_wrap=True)
    table.add_column("name / path", no_wrap=True)
    table.add_column("condition / result", overflow="fold")
    table.add_column("value", no_wrap=True)
    table.add_column("latency ms", justify="right", no_wrap=True)
    for name, result in signals.items():
        matched = bool(result.labels) and result.error is None
        table.add_row(
            "signal",
            Text(name),
            Text(_signal_summary(result)),
            _bool_text(matched),
            f"{result.latency_ms:.3f}",
        )
    table.add_section()
    for entry in decision.trace:
        depth = entry.path.count(".") - 1
        condition = "  " * max(depth, 0) + entry.condition
        if entry.observed:
            condition += f"   [{entry.observed}]"
        table.add_row("condition", Text(entry.path), Text(condition), _bool_text(entry.value), "")
    table.add_section()
    summary = decision.message if decision.message else target
    action = Text(str(decision.action), style="bold")
    table.add_row("winner", Text(decision.name), Text(summary), action, "")
    return table
