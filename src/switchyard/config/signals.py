"""Signal configuration models (one per YAML `type:`)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from switchyard.config.base import StrictModel


def _check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


class SignalBase(StrictModel):
    name: str = Field(min_length=1)
    timeout_s: float = Field(default=1.0, gt=0)
    fail_open: bool = True


class KeywordSignalConfig(SignalBase):
    """Fires when keywords (literal or regex) match the last user message or the conversation."""

    type: Literal["keyword"]
    keywords: list[str] = Field(min_length=1)
    regex: bool = False
    match: Literal["any", "all"] = "any"
    scope: Literal["last_user", "conversation"] = "last_user"
    case_sensitive: bool = False

    @model_validator(mode="after")
    def _regexes_compile(self) -> KeywordSignalConfig:
        if self.regex:
            for keyword in self.keywords:
                _check_regex(keyword)
        return self


class ContextLengthSignalConfig(SignalBase):
    """Value = prompt tokens (tiktoken, offline files); falls back to bytes per token."""

    type: Literal["context_length"]
    encoding: Literal["cl100k_base", "o200k_base"] = "cl100k_base"
    bytes_per_token: float = Field(default=4.0, gt=0)


class MessageCountSignalConfig(SignalBase):
    """Value = number of messages (`count: messages`) or of user turns (`count: turns`)."""

    type: Literal["message_count"]
    count: Literal["messages", "turns"] = "messages"


class ToolsSignalConfig(SignalBase):
    """Fires when the request offers tools/functions to the model."""

    type: Literal["tools"]


class HeaderSignalConfig(SignalBase):
    """Fires when a request header equals one of `values` (or matches `pattern`)."""

    type: Literal["header"]
    header: str = Field(min_length=1)
    values: list[str] = Field(default_factory=list)
    pattern: str | None = None

    @model_validator(mode="after")
    def _needs_values_or_pattern(self) -> HeaderSignalConfig:
        if not self.values and self.pattern is None:
            raise ValueError("give `values` or `pattern`")
        if self.pattern is not None:
            _check_regex(self.pattern)
        return self


class MetadataSignalConfig(SignalBase):
    """Fires when request `metadata[key]` equals one of `values` (any value if empty)."""

    type: Literal["metadata"]
    key: str = Field(min_length=1)
    values: list[str] = Field(default_factory=list)


class TenantSignalConfig(SignalBase):
    """Label = the request's tenant; fires when it is one of `tenants` (any tenant if empty)."""

    type: Literal["tenant"]
    tenants: list[str] = Field(default_factory=list)


# Semantic signal models live with their signals and extend SignalBase, so they are imported
# here, after it (switchyard.signals imports this module first, which keeps the order).
from switchyard.learn.signal_config import LearnedRouterSignalConfig  # noqa: E402
from switchyard.signals.semantic_config import (  # noqa: E402
    ComplexitySignalConfig,
    DomainSignalConfig,
    EmbeddingSignalConfig,
    JailbreakSignalConfig,
    LanguageSignalConfig,
    PiiSignalConfig,
)

SignalConfig = Annotated[
    KeywordSignalConfig
    | ContextLengthSignalConfig
    | MessageCountSignalConfig
    | ToolsSignalConfig
    | HeaderSignalConfig
    | MetadataSignalConfig
    | TenantSignalConfig
    | EmbeddingSignalConfig
    | DomainSignalConfig
    | ComplexitySignalConfig
    | LanguageSignalConfig
    | JailbreakSignalConfig
    | PiiSignalConfig
    | LearnedRouterSignalConfig,
    Field(discriminator="type"),
]
