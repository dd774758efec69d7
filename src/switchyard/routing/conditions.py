"""Condition trees compiled into small node objects that evaluate and trace themselves.

Semantics of a signal test (`signal: NAME` with nothing else, `label`/`labels`, or one
comparator):

- bare `signal`: the signal matched, i.e. its result has at least one label;
- `label: L`: L is among the labels; `labels: [A, B]`: at least one of them is;
- `gte`/`gt`/`lte`/`lt`/`eq`: compares the result's `value`, or its `score` when it has none;
- a signal with no result (not evaluated) fails every test;
- an errored signal that fails open (error set, no `error` label) fails every test; one that
  fails closed (error set and labelled `error`) passes every test, so a broken guard blocks.

Every evaluated node adds one TraceEntry (pre-order: a parent before its children).
`all`/`any` short-circuit; nodes that were not evaluated are not traced.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping

from switchyard.config.routing import Condition
from switchyard.types import SignalResult, TraceEntry

Trace = list[TraceEntry]
Signals = Mapping[str, SignalResult]

_COMPARATORS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "gte": (">=", operator.ge),
    "gt": (">", operator.gt),
    "lte": ("<=", operator.le),
    "lt": ("<", operator.lt),
    "eq": ("==", operator.eq),
}


_MEMO_LIMIT = 256


class ConditionNode:
    """A compiled condition: `holds(signals, trace)` evaluates it and records the trace.

    Trace entries are immutable, so each node reuses the entries it has built before (bounded
    memo keyed by what it observed): the steady-state cost of a node is a lookup and an append.
    """

    __slots__ = ("path", "text")

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text

    def holds(self, signals: Signals, trace: Trace) -> bool:
        raise NotImplementedError


class CompositeNode(ConditionNode):
    __slots__ = ("children", "entry_true", "entry_false")

    def __init__(self, path: str, text: str, children: tuple[ConditionNode, ...]) -> None:
        super().__init__(path, text)
        self.children = children
        self.entry_true = TraceEntry(path, text, True)
        self.entry_false = TraceEntry(path, text, False)


class AllNode(CompositeNode):
    __slots__ = ()

    def __init__(self, path: str, children: tuple[ConditionNode, ...]) -> None:
        super().__init__(path, f"all of {len(children)}", children)

    def holds(self, signals: Signals, trace: Trace) -> bool:
        slot = len(trace)
        for child in self.children:
            if not child.holds(signals, trace):
                trace.insert(slot, self.entry_false)
                return False
        trace.insert(slot, self.entry_true)
        return True


class AnyNode(CompositeNode):
    __slots__ = ()

    def __init__(self, path: str, children: tuple[ConditionNode, ...]) -> None:
        super().__init__(path, f"any of {len(children)}", children)

    def holds(self, signals: Signals, trace: Trace) -> bool:
        slot = len(trace)
        for child in self.children:
            if child.holds(signals, trace):
                trace.insert(slot, self.entry_true)
                return True
        trace.insert(slot, self.entry_false)
        return False


class NotNode(CompositeNode):
    __slots__ = ()

    def __init__(self, path: str, child: ConditionNode) -> None:
        super().__init__(path, "not", (child,))

    def holds(self, signals: Signals, trace: Trace) -> bool:
        slot = len(trace)
        if self.children[0].holds(signals, trace):
            trace.insert(slot, self.entry_false)
            return False
        trace.insert(slot, self.entry_true)
        return True


def _labels_text(result: SignalResult) -> str:
    return f"labels=[{', '.join(result.labels)}]" if result.labels else "no labels"


class SignalTestNode(ConditionNode):
    """Base of the leaf tests: handles missing and errored results the same way for all."""

    __slots__ = ("signal", "memo", "entry_missing", "keyed_by_value")

    def __init__(self, path: str, text: str, signal: str, keyed_by_value: bool = False) -> None:
        super().__init__(path, text)
        self.signal = signal
        self.memo: dict[object, TraceEntry] = {}
        self.entry_missing = TraceEntry(path, text, False, "not evaluated")
        # the memo key: what the test looks at (labels, or value and score for comparators)
        self.keyed_by_value = keyed_by_value

    def holds(self, signals: Signals, trace: Trace) -> bool:
        result = signals.get(self.signal)
        if result is None:
            entry = self.entry_missing
        elif result.error is not None:
            closed = "error" in result.labels
            observed = f"error (fail {'closed' if closed else 'open'}): {result.error}"
            entry = TraceEntry(self.path, self.text, closed, observed)
        else:
            key = (result.value, result.score) if self.keyed_by_value else result.labels
            cached = self.memo.get(key)
            if cached is None:
                value, observed = self.test(result)
                cached = TraceEntry(self.path, self.text, value, observed)
                if len(self.memo) < _MEMO_LIMIT:
                    self.memo[key] = cached
            entry = cached
        trace.append(entry)
        return entry.value

    def test(self, result: SignalResult) -> tuple[bool, str]:
        raise NotImplementedError


class MatchedNode(SignalTestNode):
    __slots__ = ()

    def __init__(self, path: str, signal: str) -> None:
        super().__init__(path, f"{signal} matched", signal)

    def test(self, result: SignalResult) -> tuple[bool, str]:
        return bool(result.labels), _labels_text(result)


class LabelNode(SignalTestNode):
    __slots__ = ("wanted",)

    def __init__(self, path: str, signal: str, wanted: tuple[str, ...]) -> None:
        if len(wanted) == 1:
            text = f"{signal} has label {wanted[0]!r}"
        else:
            text = f"{signal} has any label of [{', '.join(wanted)}]"
        super().__init__(path, text, signal)
        self.wanted = frozenset(wanted)

    def test(self, result: SignalResult) -> tuple[bool, str]:
        return not self.wanted.isdisjoint(result.labels), _labels_text(result)


class CompareNode(SignalTestNode):
    __slots__ = ("compare", "threshold")

    def __init__(self, path: str, signal: str, comparator: str, threshold: float) -> None:
        symbol, compare = _COMPARATORS[comparator]
        super().__init__(path, f"{signal} {symbol} {threshold:g}", signal, keyed_by_value=True)
        self.compare = compare
        self.threshold = threshold

    def test(self, result: SignalResult) -> tuple[bool, str]:
        if result.value is not None:
            return self.compare(result.value, self.threshold), f"value={result.value:g}"
        return self.compare(result.score, self.threshold), f"score={result.score:g}"


def compile_condition(condition: Condition, path: str) -> ConditionNode:
    """Turn a validated Condition into a node tree; `path` names the node in the trace."""
    if condition.all is not None:
        return AllNode(path, _compile_children(condition.all, f"{path}.all"))
    if condition.any is not None:
        return AnyNode(path, _compile_children(condition.any, f"{path}.any"))
    if condition.not_ is not None:
        return NotNode(path, compile_condition(condition.not_, f"{path}.not"))
    signal = condition.signal
    if signal is None:  # the config validator guarantees exactly one kind
        raise ValueError(f"{path}: empty condition")
    if condition.label is not None or condition.labels is not None:
        single = (condition.label,) if condition.label is not None else ()
        return LabelNode(path, signal, single + tuple(condition.labels or ()))
    for comparator in _COMPARATORS:
        threshold = getattr(condition, comparator)
        if threshold is not None:
            return CompareNode(path, signal, comparator, float(threshold))
    return MatchedNode(path, signal)


def _compile_children(children: list[Condition], path: str) -> tuple[ConditionNode, ...]:
    return tuple(compile_condition(child, f"{path}[{i}]") for i, child in enumerate(children))
