"""Routing configuration: condition trees, decisions and the default target."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from switchyard.config.base import StrictModel
from switchyard.config.signals import SignalConfig
from switchyard.learn.signal_config import LearnedStrategyConfig

_COMPARATORS = ("gte", "gt", "lte", "lt", "eq")


class Condition(StrictModel):
    """A condition node: exactly one of `all`, `any`, `not`, or a signal test.

    Signal test: `signal: NAME` alone means "the signal matched"; add `label:` / `labels:` to
    require a label, or one comparator (`gte`, `gt`, `lte`, `lt`, `eq`) on the signal's value.
    """

    all: list[Condition] | None = None
    any: list[Condition] | None = None
    not_: Condition | None = Field(default=None, alias="not")
    signal: str | None = None
    label: str | None = None
    labels: list[str] | None = None
    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None
    eq: float | None = None

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Condition:
        kinds = [k for k in ("all", "any", "not_", "signal") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a condition needs exactly one of: all, any, not, signal")
        tests = [c for c in _COMPARATORS if getattr(self, c) is not None]
        has_label = self.label is not None or self.labels is not None
        if self.signal is None and (tests or has_label):
            raise ValueError("label/comparators are only allowed next to `signal`")
        if len(tests) + int(has_label) > 1:
            raise ValueError("use one of label/labels or a single comparator per condition")
        if self.all is not None and not self.all or self.any is not None and not self.any:
            raise ValueError("`all`/`any` need at least one condition")
        return self

    def signal_names(self) -> set[str]:
        names: set[str] = set()
        if self.signal is not None:
            names.add(self.signal)
        for child in (self.all or []) + (self.any or []):
            names |= child.signal_names()
        if self.not_ is not None:
            names |= self.not_.signal_names()
        return names


class DecisionConfig(StrictModel):
    """A named rule: when `when` holds, route to `models` (in order) or block.

    `strategy: {type: learned, artifact, candidates, lam | quality_target |
    max_cost_per_request}` routes to a trained router's choice, with `models` as fallbacks. The
    router runs as a signal named after the decision, and `when` defaults to "that router made
    a choice".
    """

    name: str = Field(min_length=1)
    priority: int = 0
    when: Condition
    action: Literal["route", "block"] = "route"
    models: list[str] = Field(default_factory=list)
    model: str | None = None
    message: str = "request blocked by policy"
    models_from_signal: str | None = Field(
        default=None,
        description="take the target from this signal's labels (e.g. a learned_router); "
        "`model`/`models` are then fallbacks",
    )
    strategy: LearnedStrategyConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _strategy_condition(cls, data: Any) -> Any:
        if (isinstance(data, dict) and data.get("strategy") is not None and "when" not in data
                and isinstance(data.get("name"), str)):
            return {**data, "when": {"signal": data["name"]}}
        return data

    @model_validator(mode="after")
    def _target(self) -> DecisionConfig:
        if self.model is not None and self.models:
            raise ValueError("give `model` or `models`, not both")
        if self.strategy is not None and self.models_from_signal is not None:
            raise ValueError("give `strategy` or `models_from_signal`, not both")
        if self.strategy is not None and self.action == "block":
            raise ValueError("a `block` decision takes no `strategy`")
        has_target = (self.model is not None or bool(self.models)
                      or bool(self.models_from_signal) or self.strategy is not None)
        if self.action == "route" and not has_target:
            raise ValueError(
                "a `route` decision needs `model`, `models`, `models_from_signal` or `strategy`")
        return self

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.model,) if self.model is not None else tuple(self.models)

    @property
    def target_signal(self) -> str | None:
        """The signal whose labels are this decision's first targets, if any."""
        return self.name if self.strategy is not None else self.models_from_signal


class RoutingConfig(StrictModel):
    signals: list[SignalConfig] = Field(default_factory=list)
    decisions: list[DecisionConfig] = Field(default_factory=list)
    default: str | list[str]

    @model_validator(mode="after")
    def _strategies_as_signals(self) -> RoutingConfig:
        """Each decision's `strategy` runs as a signal named after the decision. Idempotent: a
        dumped and reloaded config already holds that signal."""
        existing = {signal.name: signal for signal in self.signals}
        for decision in self.decisions:
            if decision.strategy is None:
                continue
            signal = decision.strategy.as_signal(decision.name)
            if decision.name not in existing:
                self.signals.append(signal)
                existing[decision.name] = signal
            elif existing[decision.name] != signal:
                raise ValueError(
                    f"decision {decision.name!r} has a `strategy`, which runs as a signal of the "
                    "same name, but a different signal with that name exists; rename one of them")
        return self

    @property
    def default_models(self) -> tuple[str, ...]:
        return (self.default,) if isinstance(self.default, str) else tuple(self.default)
