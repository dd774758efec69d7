"""Static policy checks: shadowed decisions, ambiguous equal-priority decisions, unused signals.

The checker enumerates every *relevant* state of the signals two (or more) conditions look at:
for each signal, which of the mentioned labels it has (exactly one or none for single-label
signals, any subset otherwise, plus "some other label") and where its value lies relative to the
thresholds the conditions compare it with. Each state is a set of SignalResults, and the real
compiled condition nodes of the decision engine are evaluated on it, so the checker can never
disagree with `decide()` about what a condition means. Labels and values of one signal are
treated as independent (conservative: an overlap reported may need a label/value combination a
signal never produces; a shadowing reported holds for every combination).

When the state space of one check is larger than `MAX_STATES`, a fixed-seed random sample of it
is checked instead and the finding says so.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from switchyard.config.routing import Condition, DecisionConfig, RoutingConfig
from switchyard.routing.conditions import ConditionNode, compile_condition
from switchyard.types import SignalResult

MAX_STATES = 200_000
SINGLE_LABEL_TYPES = frozenset({"domain", "language", "complexity", "jailbreak", "tenant"})
OTHER_LABEL = "\x00other"


@dataclass(frozen=True)
class PolicyFinding:
    kind: str  # unsatisfiable | shadowed | ambiguous | unused_signal | undefined_signal
    decisions: tuple[str, ...]
    message: str
    sampled: bool = False


@dataclass
class SignalSpace:
    """What the conditions under check ask about one signal."""

    labels: set[str] = field(default_factory=set)
    thresholds: set[float] = field(default_factory=set)
    single_label: bool = False

    def label_states(self) -> list[tuple[str, ...]]:
        mentioned = sorted(self.labels) + [OTHER_LABEL]
        if self.single_label:
            return [()] + [(label,) for label in mentioned]
        return [
            combo
            for size in range(len(mentioned) + 1)
            for combo in itertools.combinations(mentioned, size)
        ]

    def value_states(self) -> Sequence[float | None]:
        if not self.thresholds:
            return [None]
        points = sorted(self.thresholds)
        values: set[float] = {points[0] - 1.0, points[-1] + 1.0}
        values.update(points)
        values.update((a + b) / 2 for a, b in itertools.pairwise(points))
        return sorted(values)

    def size(self) -> int:
        return len(self.label_states()) * len(self.value_states())


def _collect(condition: Condition, spaces: dict[str, SignalSpace]) -> None:
    for child in (condition.all or []) + (condition.any or []):
        _collect(child, spaces)
    if condition.not_ is not None:
        _collect(condition.not_, spaces)
    if condition.signal is None:
        return
    space = spaces.setdefault(condition.signal, SignalSpace())
    if condition.label is not None:
        space.labels.add(condition.label)
    space.labels.update(condition.labels or [])
    for comparator in ("gte", "gt", "lte", "lt", "eq"):
        threshold = getattr(condition, comparator)
        if threshold is not None:
            space.thresholds.add(float(threshold))


class StateSpace:
    """All relevant signal states for a group of conditions (or a fixed-seed sample of them)."""

    def __init__(self, conditions: Sequence[Condition], single_label: set[str]) -> None:
        self.spaces: dict[str, SignalSpace] = {}
        for condition in conditions:
            _collect(condition, self.spaces)
        for name, space in self.spaces.items():
            space.single_label = name in single_label
        self.total = 1
        for space in self.spaces.values():
            self.total *= space.size()
        self.sampled = self.total > MAX_STATES

    def _options(self) -> list[tuple[str, list[SignalResult]]]:
        options = []
        for name, space in sorted(self.spaces.items()):
            results = [
                SignalResult(name, labels=labels, score=value or 0.0, value=value)
                for labels in space.label_states()
                for value in space.value_states()
            ]
            options.append((name, results))
        return options

    def states(self) -> Iterator[Mapping[str, SignalResult]]:
        options = self._options()
        names = [name for name, _ in options]
        if not self.sampled:
            for combo in itertools.product(*(results for _, results in options)):
                yield dict(zip(names, combo, strict=True))
            return
        rng = random.Random(0)
        for _ in range(MAX_STATES):
            yield {name: rng.choice(results) for name, results in options}


def _node(decision: DecisionConfig) -> ConditionNode:
    return compile_condition(decision.when, f"decisions[{decision.name}].when")


def _holds(node: ConditionNode, state: Mapping[str, SignalResult]) -> bool:
    return node.holds(state, [])


def _rank(config: RoutingConfig) -> list[DecisionConfig]:
    """Evaluation order of decide(): blocks first, then routes; priority desc, then index."""
    indexed = list(enumerate(config.decisions))
    ordered = sorted(
        indexed, key=lambda item: (item[1].action != "block", -item[1].priority, item[0])
    )
    return [decision for _, decision in ordered]


def single_label_signals(config: RoutingConfig) -> set[str]:
    names = set()
    for signal in config.signals:
        exclusive = bool(getattr(signal, "exclusive", False))
        if signal.type in SINGLE_LABEL_TYPES or exclusive:
            names.add(signal.name)
    return names


def _shadow_findings(config: RoutingConfig, single: set[str]) -> list[PolicyFinding]:
    ranked = _rank(config)
    findings: list[PolicyFinding] = []
    for position, decision in enumerate(ranked):
        node = _node(decision)
        space = StateSpace([decision.when], single)
        if not any(_holds(node, state) for state in space.states()):
            findings.append(PolicyFinding(
                "unsatisfiable", (decision.name,),
                f"decision {decision.name!r} can never fire: its condition is unsatisfiable",
                space.sampled,
            ))  # fmt: skip
            continue
        earlier = ranked[:position]
        if not earlier:
            continue
        finding = _shadowed_by(decision, node, earlier, single)
        if finding is not None:
            findings.append(finding)
    return findings


def _shadowed_by(
    decision: DecisionConfig,
    node: ConditionNode,
    earlier: list[DecisionConfig],
    single: set[str],
) -> PolicyFinding | None:
    """Shadowed when every state that fires `decision` also fires an earlier-ranked decision."""
    for other in earlier:  # one earlier decision alone implies it
        space = StateSpace([decision.when, other.when], single)
        other_node = _node(other)
        if all(_holds(other_node, s) for s in space.states() if _holds(node, s)):
            return PolicyFinding(
                "shadowed", (decision.name, other.name),
                f"decision {decision.name!r} can never fire: whenever it matches, "
                f"{other.name!r} (ranked before it: {other.action}, priority {other.priority}) "
                "matches too",
                space.sampled,
            )  # fmt: skip
    space = StateSpace([decision.when] + [o.when for o in earlier], single)
    nodes = [_node(o) for o in earlier]
    covered = all(any(_holds(n, s) for n in nodes) for s in space.states() if _holds(node, s))
    if covered:
        names = tuple(o.name for o in earlier)
        return PolicyFinding(
            "shadowed", (decision.name, *names),
            f"decision {decision.name!r} can never fire: decisions ranked before it together "
            f"cover every case where it matches ({', '.join(names)})",
            space.sampled,
        )  # fmt: skip
    return None


def _ambiguity_findings(config: RoutingConfig, single: set[str]) -> list[PolicyFinding]:
    findings: list[PolicyFinding] = []
    routes = [d for d in config.decisions if d.action == "route"]
    for first, second in itertools.combinations(routes, 2):
        if first.priority != second.priority or first.targets == second.targets:
            continue
        space = StateSpace([first.when, second.when], single)
        a, b = _node(first), _node(second)
        if any(_holds(a, s) and _holds(b, s) for s in space.states()):
            findings.append(PolicyFinding(
                "ambiguous", (first.name, second.name),
                f"decisions {first.name!r} and {second.name!r} have equal priority "
                f"({first.priority}) and can fire together; declaration order picks "
                f"{first.name!r}",
                space.sampled,
            ))  # fmt: skip
    return findings


def _signal_findings(config: RoutingConfig) -> list[PolicyFinding]:
    defined = {signal.name for signal in config.signals}
    referenced: set[str] = set()
    for decision in config.decisions:
        referenced |= decision.when.signal_names()
    findings = [
        PolicyFinding("unused_signal", (), f"signal {name!r} is defined but no decision uses it")
        for name in sorted(defined - referenced)
    ]
    findings += [
        PolicyFinding("undefined_signal", (), f"signal {name!r} is used but not defined")
        for name in sorted(referenced - defined)
    ]
    return findings


def check_policy(config: RoutingConfig) -> list[PolicyFinding]:
    """Every static finding for a routing configuration."""
    single = single_label_signals(config)
    return (
        _signal_findings(config)
        + _shadow_findings(config, single)
        + _ambiguity_findings(config, single)
    )


@dataclass
class CofiringReport:
    """How decisions fire on real inputs: per example, every decision whose condition holds."""

    examples: int = 0
    fired: list[tuple[str, ...]] = field(default_factory=list)
    pairs: dict[tuple[str, str], int] = field(default_factory=dict)
    never_fired: tuple[str, ...] = ()


def cofiring(
    config: RoutingConfig, results: Sequence[Mapping[str, SignalResult]]
) -> CofiringReport:
    """Which decisions hold together on each example's signal results."""
    nodes = [(decision.name, _node(decision)) for decision in config.decisions]
    report = CofiringReport(examples=len(results))
    seen: set[str] = set()
    for signals in results:
        fired = tuple(name for name, node in nodes if _holds(node, signals))
        report.fired.append(fired)
        seen.update(fired)
        for pair in itertools.combinations(fired, 2):
            report.pairs[pair] = report.pairs.get(pair, 0) + 1
    report.never_fired = tuple(name for name, _ in nodes if name not in seen)
    return report
