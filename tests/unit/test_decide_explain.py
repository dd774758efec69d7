"""Explaining decisions: the JSON shape of /v1/route and the `switchyard route` table."""

from __future__ import annotations

import json

from rich.console import Console

from switchyard.config.routing import RoutingConfig
from switchyard.routing.engine import RoutingPolicy, decide
from switchyard.routing.explain import decision_to_dict, explain_table
from switchyard.types import SignalResult

POLICY = RoutingPolicy.from_config(
    RoutingConfig.model_validate(
        {
            "signals": [
                {"name": "code", "type": "keyword", "keywords": ["python"]},
                {"name": "ctx", "type": "context_length"},
            ],
            "decisions": [
                {
                    "name": "coding",
                    "priority": 2,
                    "model": "coder",
                    "when": {"all": [{"signal": "code"}, {"not": {"signal": "ctx", "gte": 2000}}]},
                },
                {
                    "name": "long",
                    "priority": 1,
                    "models": ["big", "mid"],
                    "when": {"signal": "ctx", "gt": 100},
                },
            ],
            "default": "small",
        }
    )
)

SIGNALS = {
    "code": SignalResult("code", labels=("python",), score=1.0, latency_ms=0.012),
    "ctx": SignalResult("ctx", value=3000.0, latency_ms=0.2),
}


def test_decision_to_dict_has_signals_trace_and_winner() -> None:
    decision = decide(SIGNALS, POLICY)
    data = decision_to_dict(decision, SIGNALS)
    json.dumps(data)  # JSON-ready
    assert data["decision"] == {
        "name": "long",
        "action": "route",
        "models": ["big", "mid"],
        "priority": 1,
        "message": "",
        "reason": decision.reason,
    }
    assert data["signals"]["code"]["labels"] == ["python"]
    assert data["signals"]["ctx"]["value"] == 3000.0
    assert data["signals"]["ctx"]["latency_ms"] == 0.2
    assert data["signals"]["ctx"]["error"] is None
    assert [entry["path"] for entry in data["trace"]] == [
        "decisions[coding].when",
        "decisions[coding].when.all[0]",
        "decisions[coding].when.all[1]",
        "decisions[coding].when.all[1].not",
        "decisions[long].when",
    ]
    assert data["trace"][3] == {
        "path": "decisions[coding].when.all[1].not",
        "condition": "ctx >= 2000",
        "value": True,
        "observed": "value=3000",
    }


def test_explain_table_renders_everything_without_markup_loss() -> None:
    errored = {**SIGNALS, "code": SignalResult("code", error="TimeoutError: slow")}
    decision = decide(errored, POLICY)
    console = Console(width=200, record=True, color_system=None)
    console.print(explain_table(decision, errored))
    text = console.export_text()
    assert "decisions[coding].when.all[0]" in text  # brackets are not eaten as markup
    assert "error: TimeoutError: slow" in text
    assert "error (fail open): TimeoutError: slow" in text
    assert "ctx > 100" in text
    assert "winner" in text and "long" in text and "big, mid" in text
    assert "highest-ranked match" in text
