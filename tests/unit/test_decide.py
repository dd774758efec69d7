"""Table-driven tests of the pure decision engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from switchyard.config.routing import RoutingConfig
from switchyard.routing.engine import RoutingPolicy, decide
from switchyard.types import Action, SignalResult

SIGNALS_CONFIG = [
    {"name": "code", "type": "keyword", "keywords": ["python"]},
    {"name": "math", "type": "keyword", "keywords": ["integral"]},
    {"name": "ctx", "type": "context_length"},
    {"name": "turns", "type": "message_count"},
    {"name": "tools", "type": "tools"},
    {"name": "tenant", "type": "tenant"},
    {"name": "guard", "type": "keyword", "keywords": ["bomb"]},
]

DECISIONS = [
    # declaration index 0
    {
        "name": "long",
        "priority": 20,
        "models": ["big", "mid"],
        "when": {"signal": "ctx", "gte": 2000},
    },
    # 1: same priority as `math` below, declared first -> wins ties
    {
        "name": "coding",
        "priority": 10,
        "model": "coder",
        "when": {"all": [{"signal": "code"}, {"not": {"signal": "tools"}}]},
    },
    # 2
    {"name": "math", "priority": 10, "model": "mathy", "when": {"signal": "math"}},
    # 3
    {
        "name": "agent",
        "priority": 5,
        "model": "mid",
        "when": {"any": [{"signal": "tools"}, {"signal": "turns", "gt": 6}]},
    },
    # 4: label test and nesting three levels deep
    {
        "name": "vip",
        "priority": 1,
        "model": "big",
        "when": {
            "all": [
                {"signal": "tenant", "labels": ["acme", "globex"]},
                {"any": [{"not": {"signal": "ctx", "lt": 100}}, {"signal": "turns", "eq": 1}]},
            ]
        },
    },
    # 5
    {
        "name": "guarded",
        "priority": 0,
        "action": "block",
        "message": "no weapons",
        "when": {"signal": "guard"},
    },
    # 6: a second block with higher priority
    {
        "name": "guarded_math",
        "priority": 3,
        "action": "block",
        "message": "no weapon maths",
        "when": {"all": [{"signal": "guard"}, {"signal": "math"}]},
    },
]


def make_policy(decisions: list[dict[str, Any]] | None = None) -> RoutingPolicy:
    config = RoutingConfig.model_validate(
        {"signals": SIGNALS_CONFIG, "decisions": decisions or DECISIONS, "default": ["small"]}
    )
    return RoutingPolicy.from_config(config)


POLICY = make_policy()


def kw(name: str, *labels: str) -> SignalResult:
    return SignalResult(name, labels=labels, score=1.0 if labels else 0.0)


def num(name: str, value: float) -> SignalResult:
    return SignalResult(name, value=value)


def base_signals(**overrides: SignalResult) -> dict[str, SignalResult]:
    signals = {
        "code": kw("code"),
        "math": kw("math"),
        "ctx": num("ctx", 50),
        "turns": num("turns", 1),
        "tools": kw("tools"),
        "tenant": kw("tenant", "default"),
        "guard": kw("guard"),
    }
    signals.update(overrides)
    return signals


@dataclass
class Case:
    id: str
    signals: dict[str, SignalResult]
    expected: str
    models: tuple[str, ...]
    requested: str = "auto"
    action: Action = Action.ROUTE
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("nothing matches -> default", base_signals(), "default", ("small",)),
    Case("single keyword", base_signals(code=kw("code", "python")), "coding", ("coder",)),
    Case(
        "not: tools block coding, agent wins",
        base_signals(code=kw("code", "python"), tools=kw("tools", "tools")),
        "agent",
        ("mid",),
    ),
    Case(
        "tie at priority 10 -> declaration order",
        base_signals(code=kw("code", "python"), math=kw("math", "integral")),
        "coding",
        ("coder",),
    ),
    Case(
        "higher priority beats earlier declaration",
        base_signals(code=kw("code", "python"), ctx=num("ctx", 5000)),
        "long",
        ("big", "mid"),
    ),
    Case("comparator gte at boundary", base_signals(ctx=num("ctx", 2000)), "long", ("big", "mid")),
    Case("comparator gte below", base_signals(ctx=num("ctx", 1999)), "default", ("small",)),
    Case("comparator gt strict", base_signals(turns=num("turns", 6)), "default", ("small",)),
    Case("comparator gt above", base_signals(turns=num("turns", 7)), "agent", ("mid",)),
    Case(
        "comparator falls back to score",
        base_signals(turns=SignalResult("turns", score=9.0)),
        "agent",
        ("mid",),
    ),
    Case(
        "label list + nested any/not (ctx >= 100)",
        base_signals(tenant=kw("tenant", "globex"), ctx=num("ctx", 150), turns=num("turns", 3)),
        "vip",
        ("big",),
    ),
    Case(
        "nested any via eq when not(ctx < 100) fails",
        base_signals(tenant=kw("tenant", "acme"), ctx=num("ctx", 10), turns=num("turns", 1)),
        "vip",
        ("big",),
    ),
    Case(
        "nested all fails on both any branches",
        base_signals(tenant=kw("tenant", "acme"), ctx=num("ctx", 10), turns=num("turns", 2)),
        "default",
        ("small",),
    ),
    Case("wrong label", base_signals(tenant=kw("tenant", "initech")), "default", ("small",)),
    Case(
        "block matches in auto",
        base_signals(guard=kw("guard", "bomb")),
        "guarded",
        (),
        action=Action.BLOCK,
    ),
    Case(
        "block beats a higher-priority route decision",
        base_signals(guard=kw("guard", "bomb"), ctx=num("ctx", 9000)),
        "guarded",
        (),
        action=Action.BLOCK,
    ),
    Case(
        "highest-priority block wins among blocks",
        base_signals(guard=kw("guard", "bomb"), math=kw("math", "integral")),
        "guarded_math",
        (),
        action=Action.BLOCK,
    ),
    Case(
        "block beats an explicit model",
        base_signals(guard=kw("guard", "bomb")),
        "guarded",
        (),
        requested="gpt-4o",
        action=Action.BLOCK,
    ),
    Case(
        "block beats an alias",
        base_signals(guard=kw("guard", "bomb")),
        "guarded",
        (),
        requested="coding",
        action=Action.BLOCK,
    ),
    Case(
        "explicit model",
        base_signals(code=kw("code", "python")),
        "explicit",
        ("gpt-4o",),
        requested="gpt-4o",
    ),
    Case(
        "alias ignores its condition and other matches",
        base_signals(ctx=num("ctx", 9000)),
        "math",
        ("mathy",),
        requested="math",
    ),
    Case(
        "a block decision's name as the model blocks",
        base_signals(),
        "guarded",
        (),
        requested="guarded",
        action=Action.BLOCK,
    ),
    Case(
        "fail-open error fails the test",
        base_signals(code=SignalResult("code", error="boom")),
        "default",
        ("small",),
    ),
    Case(
        "fail-closed error passes the test (bare)",
        base_signals(guard=SignalResult("guard", labels=("error",), error="timeout after 1s")),
        "guarded",
        (),
        action=Action.BLOCK,
    ),
    Case(
        "fail-closed error passes a comparator",
        base_signals(ctx=SignalResult("ctx", labels=("error",), error="boom")),
        "long",
        ("big", "mid"),
    ),
    Case(
        "missing signal result fails its tests",
        {k: v for k, v in base_signals(code=kw("code", "python")).items() if k != "tools"},
        "coding",
        ("coder",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decide_matrix(case: Case) -> None:
    decision = decide(case.signals, POLICY, case.requested)
    assert decision.name == case.expected, decision.reason
    assert decision.models == case.models
    assert decision.action == case.action
    assert decision.reason
    assert decision.trace  # the block decisions are always evaluated


def test_decide_is_pure_and_repeatable() -> None:
    signals = base_signals(code=kw("code", "python"), math=kw("math", "integral"))
    first = decide(signals, POLICY)
    for _ in range(3):
        assert decide(signals, POLICY) == first


def test_trace_lists_every_evaluated_condition_in_order() -> None:
    signals = base_signals(code=kw("code", "python"), tools=kw("tools", "tools"))
    decision = decide(signals, POLICY)
    rows = [(e.path, e.condition, e.value, e.observed) for e in decision.trace]
    assert rows == [
        ("decisions[guarded_math].when", "all of 2", False, ""),
        ("decisions[guarded_math].when.all[0]", "guard matched", False, "no labels"),
        ("decisions[guarded].when", "guard matched", False, "no labels"),
        ("decisions[long].when", "ctx >= 2000", False, "value=50"),
        ("decisions[coding].when", "all of 2", False, ""),
        ("decisions[coding].when.all[0]", "code matched", True, "labels=[python]"),
        ("decisions[coding].when.all[1]", "not", False, ""),
        ("decisions[coding].when.all[1].not", "tools matched", True, "labels=[tools]"),
        ("decisions[math].when", "math matched", False, "no labels"),
        ("decisions[agent].when", "any of 2", True, ""),
        ("decisions[agent].when.any[0]", "tools matched", True, "labels=[tools]"),
    ]
    assert "agent" in decision.reason and "long, coding, math" in decision.reason


def test_trace_for_label_list_and_error_observations() -> None:
    signals = base_signals(
        tenant=kw("tenant", "acme"), ctx=SignalResult("ctx", error="TimeoutError: slow")
    )
    decision = decide(signals, POLICY)
    by_path = {e.path: e for e in decision.trace}
    assert by_path["decisions[long].when"].observed == "error (fail open): TimeoutError: slow"
    label_entry = by_path["decisions[vip].when.all[0]"]
    assert label_entry.condition == "tenant has any label of [acme, globex]"
    assert label_entry.value is True
    # not(ctx < 100) with a fail-open error: the inner test fails, so `not` holds
    assert by_path["decisions[vip].when.all[1].any[0]"].value is True
    assert decision.name == "vip"


def test_default_reason_and_explicit_reason() -> None:
    default = decide(base_signals(), POLICY)
    assert "no decision matched" in default.reason
    assert "long, coding, math, agent, vip" in default.reason
    explicit = decide(base_signals(), POLICY, "gpt-4o")
    assert "gpt-4o" in explicit.reason
    # explicit requests still evaluate (only) the block decisions
    assert {e.path.split(".")[0] for e in explicit.trace} == {
        "decisions[guarded_math]",
        "decisions[guarded]",
    }


def test_block_reason_names_requested_model() -> None:
    decision = decide(base_signals(guard=kw("guard", "bomb")), POLICY, "gpt-4o")
    assert decision.message == "no weapons"
    assert "'gpt-4o'" in decision.reason and "guarded" in decision.reason


def test_policy_compile_order_and_aliases() -> None:
    assert [d.name for d in POLICY.routes] == ["long", "coding", "math", "agent", "vip"]
    assert [d.name for d in POLICY.blocks] == ["guarded_math", "guarded"]
    assert POLICY.alias_names == ("long", "coding", "math", "agent", "vip")  # no blocks
    assert POLICY.default_models == ("small",)
    assert POLICY.signal_names == {"code", "math", "ctx", "turns", "tools", "tenant", "guard"}


def test_no_decisions_routes_to_default() -> None:
    policy = RoutingPolicy.from_config(RoutingConfig.model_validate({"default": "m"}))
    decision = decide({}, policy)
    assert (decision.name, decision.models, decision.trace) == ("default", ("m",), ())


def test_memoised_trace_entries_do_not_leak_between_values() -> None:
    for value, expected in [(10.0, "default"), (3000.0, "long"), (10.0, "default")]:
        decision = decide(base_signals(ctx=num("ctx", value)), POLICY)
        assert decision.name == expected
        assert decision.trace[3].observed == f"value={value:g}"
