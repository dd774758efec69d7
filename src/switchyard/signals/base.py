"""The Signal contract and the registry of signal types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel

from switchyard.types import RequestView, SignalResult


class Signal(Protocol):
    name: str

    async def evaluate(self, view: RequestView) -> SignalResult:
        """Classify the request. May raise; the caller applies timeout and fail-open/closed."""
        ...


SignalFactory = Callable[[Any], Signal]
# YAML `type:` -> (config model, factory). Filled by the modules in `switchyard.signals`.
SIGNALS: dict[str, tuple[type[BaseModel], SignalFactory]] = {}


def register_signal(
    type_name: str, config_model: type[BaseModel]
) -> Callable[[SignalFactory], SignalFactory]:
    def wrap(factory: SignalFactory) -> SignalFactory:
        SIGNALS[type_name] = (config_model, factory)
        return factory

    return wrap
