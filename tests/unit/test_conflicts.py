"""Policy conflict checker: unsatisfiable, shadowed, ambiguous decisions; unused signals."""

from __future__ import annotations

from typing import Any

import pytest

from switchyard.config.routing import RoutingConfig
from switchyard.routing import conflicts
from switchyard.routing.conflicts import check_policy, cofiring
from switchyard.types import SignalResult

SIGNALS = [
    {"name": "dom", "type": "domain"},
    {"name": "cx", "type": "complexity"},
    {"name": "kw", "type": "keyword", "keywords": ["urgent"]},
    {"name": "jb", "type": "jailbreak"},
]


def policy(decisions: list[dict[str, Any]], signals: list[dict[str, Any]] = SIGNALS) -> Any:
    raw = {"signals": signals, "decisions": decisions, "default": "m"}
    return RoutingConfig.model_validate(raw)


def route(name: str, priority: int, when: dict[str, Any], model: str = "m1") -> dict[str, Any]:
    return {"name": name, "priority": priority, "when": when, "model": model}


def kinds(config: RoutingConfig) -> list[tuple[str, tuple[str, ...]]]:
    return [(f.kind, f.decisions) for f in check_policy(config) if f.kind != "unused_signal"]


MATH = {"signal": "dom", "label": "math"}
HARD = {"signal": "cx", "label": "hard"}
KW_A_AND_B = {"all": [{"signal": "kw", "label": "a"}, {"signal": "kw", "label": "b"}]}
BLOCK = {"name": "stop", "action": "block", "when": {"any": [MATH, {"signal": "jb"}]}}


@pytest.mark.parametrize(
    ("decisions", "expected"),
    [
        (  # a narrower decision ranked after a broader one never fires
            [route("math", 10, MATH), route("hard_math", 5, {"all": [MATH, HARD]}, "m2")],
            [("shadowed", ("hard_math", "math"))],
        ),
        (  # ranked the other way round both can fire
            [route("hard_math", 10, {"all": [MATH, HARD]}, "m2"), route("math", 5, MATH)],
            [],
        ),
        (  # one signal cannot carry two single labels
            [route("both", 1, {"all": [MATH, {"signal": "dom", "label": "law"}]})],
            [("unsatisfiable", ("both",))],
        ),
        (  # but a multi-label signal can
            [route("both", 1, KW_A_AND_B)],
            [],
        ),
        (  # comparisons: value >= 0.7 implies value >= 0.5
            [route("big", 2, {"signal": "cx", "gte": 0.5}),
             route("bigger", 1, {"signal": "cx", "gte": 0.7})],
            [("shadowed", ("bigger", "big"))],
        ),
        (  # a block decision shadows routes whatever their priority
            [route("any_math", 99, MATH), BLOCK],
            [("shadowed", ("any_math", "stop"))],
        ),
        (  # covered only by two earlier decisions together
            [
                route("easy", 5, {"signal": "cx", "label": "easy"}),
                route("not_easy", 5, {"not": {"signal": "cx", "label": "easy"}}, "m2"),
                route("anything", 1, {"signal": "kw"}),
            ],
            [("shadowed", ("anything", "easy", "not_easy"))],
        ),
        (  # equal priority, different targets, can fire together
            [route("math", 3, MATH), route("urgent", 3, {"signal": "kw"}, "m2")],
            [("ambiguous", ("math", "urgent"))],
        ),
        (  # equal priority but mutually exclusive labels: fine
            [route("math", 3, MATH), route("law", 3, {"signal": "dom", "label": "law"}, "m2")],
            [],
        ),
    ],
)  # fmt: skip
def test_static_findings(decisions: list[dict[str, Any]], expected: list[Any]) -> None:
    assert kinds(policy(decisions)) == expected


def test_unused_and_undefined_signals() -> None:
    config = policy([route("x", 1, {"signal": "ghost"})])
    messages = {(f.kind, f.message) for f in check_policy(config)}
    assert ("unused_signal", "signal 'dom' is defined but no decision uses it") in messages
    assert ("undefined_signal", "signal 'ghost' is used but not defined") in messages


def test_exclusive_embedding_signals_count_as_single_label() -> None:
    signals = [
        {"name": "intent", "type": "embedding", "exclusive": True,
         "routes": [{"name": "a", "examples": ["x"]}, {"name": "b", "examples": ["y"]}]},
    ]  # fmt: skip
    both = {"all": [{"signal": "intent", "label": "a"}, {"signal": "intent", "label": "b"}]}
    assert kinds(policy([route("ab", 1, both)], signals)) == [("unsatisfiable", ("ab",))]


def test_large_state_spaces_are_sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conflicts, "MAX_STATES", 50)
    labels = [{"signal": "kw", "label": f"l{i}"} for i in range(8)]
    findings = check_policy(policy([route("wide", 1, {"any": labels})]))
    assert all(f.sampled for f in findings if f.decisions)


def test_cofiring_on_example_results() -> None:
    config = policy([route("math", 3, MATH), route("urgent", 2, {"signal": "kw"}, "m2")])
    results = [
        {"dom": SignalResult("dom", ("math",)), "kw": SignalResult("kw", ("urgent",))},
        {"dom": SignalResult("dom", ("math",)), "kw": SignalResult("kw")},
        {"dom": SignalResult("dom", ("law",)), "kw": SignalResult("kw")},
    ]
    report = cofiring(config, results)
    assert report.fired == [("math", "urgent"), ("math",), ()]
    assert report.pairs == {("math", "urgent"): 1}
    assert report.never_fired == ()
