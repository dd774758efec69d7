"""The decision engine: a routing policy compiled once, and the pure function `decide()`.

Rules (in this order):

1. Block decisions are checked first, highest priority first (ties: declaration order). The
   first one whose condition holds wins, whatever model was requested: a block beats `auto`,
   decision aliases and explicit model names alike, and beats any route decision.
2. `auto`: route decisions are checked highest priority first (ties: declaration order); the
   first match wins. None matches -> Decision(name="default", models=default models).
3. A route decision's name used as the model (an alias) -> that decision's models. A block
   decision's name used as the model -> that block (its condition aside): it names no model.
4. Anything else is a concrete model (the gateway has checked that it exists) ->
   Decision(name="explicit", models=(model,)).

Every evaluated condition node is in `Decision.trace`; `Decision.reason` says in words why the
winner won.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from switchyard.config.routing import DecisionConfig, RoutingConfig
from switchyard.routing.conditions import ConditionNode, compile_condition
from switchyard.types import Action, Decision, SignalResult, TraceEntry

AUTO_MODEL = "auto"
DEFAULT_DECISION = "default"
EXPLICIT_DECISION = "explicit"


@dataclass(frozen=True, slots=True)
class CompiledDecision:
    """One decision ready to evaluate; `win_reason` says why it wins when it matches first."""

    name: str
    priority: int
    index: int
    action: Action
    models: tuple[str, ...]
    message: str
    condition: ConditionNode
    win_reason: str
    models_from_signal: str | None = None

    def resolve(
        self, signals: Mapping[str, SignalResult], trace: list[TraceEntry]
    ) -> tuple[tuple[str, ...], Mapping[str, float]]:
        """Target models: the strategy signal's choice first (if any), then the fallbacks."""
        if self.models_from_signal is None:
            return self.models, {}
        result = signals.get(self.models_from_signal)
        usable = result is not None and result.error is None and bool(result.labels)
        chosen = result.labels if result is not None and usable else ()
        details = result.details if result is not None and usable else {}
        trace.append(TraceEntry(
            path=f"decisions[{self.name}].models_from_signal",
            condition=f"target from signal {self.models_from_signal!r}",
            value=usable,
            observed=", ".join(f"{k}={v:.4g}" for k, v in details.items()) or "no choice",
        ))
        return tuple(dict.fromkeys((*chosen, *self.models))), details


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """A RoutingConfig compiled for fast evaluation. Build it once with `from_config`."""

    blocks: tuple[CompiledDecision, ...]
    routes: tuple[CompiledDecision, ...]
    default_models: tuple[str, ...]
    aliases: Mapping[str, CompiledDecision]
    signal_names: frozenset[str]
    default_reason: str

    @classmethod
    def from_config(cls, config: RoutingConfig) -> RoutingPolicy:
        ranked = sorted(enumerate(config.decisions), key=lambda item: (-item[1].priority, item[0]))
        blocks = _compile_ranked([(i, d) for i, d in ranked if d.action == "block"])
        routes = _compile_ranked([(i, d) for i, d in ranked if d.action == "route"])
        signal_names: set[str] = set()
        for decision in config.decisions:
            signal_names |= decision.when.signal_names()
        return cls(
            blocks=blocks,
            routes=routes,
            default_models=config.default_models,
            aliases=MappingProxyType({d.name: d for d in routes + blocks}),
            signal_names=frozenset(signal_names),
            default_reason=(
                f"no decision matched (checked: {_names_text(routes)}); using the default"
            ),
        )

    @property
    def alias_names(self) -> tuple[str, ...]:
        """Route decision names a client may send as `model` (besides `auto`), by rank."""
        return tuple(d.name for d in self.routes)

    @property
    def decisions(self) -> tuple[CompiledDecision, ...]:
        """Every decision, blocks first then routes, each in evaluation order."""
        return self.blocks + self.routes


def _names_text(decisions: tuple[CompiledDecision, ...] | list[CompiledDecision]) -> str:
    return ", ".join(d.name for d in decisions) if decisions else "none"


def _compile_ranked(ranked: list[tuple[int, DecisionConfig]]) -> tuple[CompiledDecision, ...]:
    compiled: list[CompiledDecision] = []
    for index, config in ranked:
        compiled.append(
            CompiledDecision(
                name=config.name,
                priority=config.priority,
                index=index,
                action=Action(config.action),
                models=config.targets,
                models_from_signal=config.target_signal,
                message=config.message if config.action == "block" else "",
                condition=compile_condition(config.when, f"decisions[{config.name}].when"),
                win_reason=(
                    f"decision {config.name!r} is the highest-ranked match (priority "
                    f"{config.priority}, declaration index {index}); ranked before it and not "
                    f"matching: {_names_text(compiled)}"
                ),
            )
        )
    return tuple(compiled)


def decide(
    signals: Mapping[str, SignalResult], policy: RoutingPolicy, requested_model: str = AUTO_MODEL
) -> Decision:
    """Choose the decision for one request. Pure: same inputs, same Decision (trace included)."""
    trace: list[TraceEntry] = []
    for block in policy.blocks:
        if block.condition.holds(signals, trace):
            return Decision(
                name=block.name,
                action=Action.BLOCK,
                models=block.models,
                priority=block.priority,
                message=block.message,
                reason=(
                    f"block decision {block.name!r} (priority {block.priority}) matched; a block "
                    f"overrides any routing choice (requested model {requested_model!r})"
                ),
                trace=tuple(trace),
            )
    if requested_model == AUTO_MODEL:
        return _route_auto(signals, policy, trace)
    alias = policy.aliases.get(requested_model)
    if alias is not None and alias.action == Action.BLOCK:
        return Decision(
            name=alias.name,
            action=Action.BLOCK,
            models=(),
            priority=alias.priority,
            message=alias.message,
            reason=(
                f"requested model {requested_model!r} is the name of a block decision, "
                "which has no model to route to"
            ),
            trace=tuple(trace),
        )
    if alias is not None:
        models, predictions = alias.resolve(signals, trace)
        return Decision(
            name=alias.name,
            action=Action.ROUTE,
            models=models,
            predictions=predictions,
            priority=alias.priority,
            reason=f"requested model {requested_model!r} is the alias of decision {alias.name!r}",
            trace=tuple(trace),
        )
    return Decision(
        name=EXPLICIT_DECISION,
        action=Action.ROUTE,
        models=(requested_model,),
        reason=f"requested concrete model {requested_model!r} and no block decision matched",
        trace=tuple(trace),
    )


def _route_auto(
    signals: Mapping[str, SignalResult], policy: RoutingPolicy, trace: list[TraceEntry]
) -> Decision:
    for route in policy.routes:
        if route.condition.holds(signals, trace):
            models, predictions = route.resolve(signals, trace)
            return Decision(
                name=route.name,
                action=Action.ROUTE,
                models=models,
                predictions=predictions,
                priority=route.priority,
                reason=route.win_reason,
                trace=tuple(trace),
            )
    return Decision(
        name=DEFAULT_DECISION,
        action=Action.ROUTE,
        models=policy.default_models,
        reason=policy.default_reason,
        trace=tuple(trace),
    )
