"""Configuration of the `learned_router` signal (kept free of heavy imports so that
`switchyard.config.signals` can import it into the SignalConfig union without a cycle)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from switchyard.config.base import StrictModel
from switchyard.config.signals import SignalBase


class LearnedPolicy(StrictModel):
    """A trained router artifact, the candidates it chooses among, and how it trades cost.

    Give one of: `lam` (quality points traded per reference cost, see docs/learned-routing.md),
    `quality_target` (cheapest candidate predicted to reach it), or `max_cost_per_request`
    (USD; λ calibrated at start on the artifact's stored calibration prompts).
    """

    artifact: str = Field(min_length=1)
    candidates: list[str] = Field(default_factory=list)
    lam: float | None = Field(default=None, ge=0)
    quality_target: float | None = Field(default=None, ge=0, le=1)
    max_cost_per_request: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _one_policy(self) -> LearnedPolicy:
        given = [x for x in (self.lam, self.quality_target, self.max_cost_per_request)
                 if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of lam, quality_target, max_cost_per_request")
        return self


class LearnedRouterSignalConfig(SignalBase, LearnedPolicy):
    """Scores every candidate with a trained router artifact; label = the chosen model."""

    type: Literal["learned_router"]


class LearnedStrategyConfig(LearnedPolicy):
    """`strategy: {type: learned, ...}` on a decision: its target is the router's choice.

    Shorthand for a `learned_router` signal named after the decision plus
    `models_from_signal` (the decision's `models` stay fallbacks); see `RoutingConfig`.
    """

    type: Literal["learned"]

    def as_signal(self, name: str) -> LearnedRouterSignalConfig:
        fields = self.model_dump(exclude={"type"})
        return LearnedRouterSignalConfig(name=name, type="learned_router", **fields)
