"""Configuration of the `learned_router` signal (kept free of heavy imports so that
`switchyard.config.signals` can import it into the SignalConfig union without a cycle)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from switchyard.config.signals import SignalBase


class LearnedRouterSignalConfig(SignalBase):
    """Scores every candidate with a trained router artifact; label = the chosen model.

    Give one of: `lam` (quality points traded per reference cost, see docs/learned-routing.md),
    `quality_target` (cheapest candidate predicted to reach it), or `max_cost_per_request`
    (USD; λ calibrated at start on the artifact's stored calibration prompts).
    """

    type: Literal["learned_router"]
    artifact: str = Field(min_length=1)
    candidates: list[str] = Field(default_factory=list)
    lam: float | None = Field(default=None, ge=0)
    quality_target: float | None = Field(default=None, ge=0, le=1)
    max_cost_per_request: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _one_policy(self) -> LearnedRouterSignalConfig:
        given = [x for x in (self.lam, self.quality_target, self.max_cost_per_request)
                 if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of lam, quality_target, max_cost_per_request")
        return self
