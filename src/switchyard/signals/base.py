"""The Signal contract, the shared build context, and the registry of signal types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from pydantic import BaseModel

from switchyard.types import RequestView, SignalResult

T = TypeVar("T")


class Signal(Protocol):
    """One aspect of a request, evaluated into a SignalResult.

    Optional class attribute `cheap: bool` (default False when absent): a cheap signal is pure
    CPU work of a few microseconds, so the runner awaits it inline without a task or timeout.
    Convention: a signal "matches" iff its result has at least one label; numeric signals set
    `value` (and a label only if they also define a match).
    """

    name: str

    async def evaluate(self, view: RequestView) -> SignalResult:
        """Classify the request. May raise; the caller applies timeout and fail-open/closed."""
        ...


@dataclass
class SignalContext:
    """What signal factories share while one configuration is being built.

    `shared(key, create)` returns the one resource stored under `key`, creating it on first use
    (e.g. one embedder or one tokenizer for every signal that needs it). `config_dir` is the
    directory of the configuration file, for resolving relative paths.
    """

    config_dir: Path | None = None
    resources: dict[str, Any] = field(default_factory=dict)

    def shared(self, key: str, create: Callable[[], T]) -> T:
        if key not in self.resources:
            self.resources[key] = create()
        return cast(T, self.resources[key])

    async def aclose(self) -> None:
        """Close every shared resource that can be closed (`aclose()` or `close()`), once."""
        resources = list(self.resources.values())
        self.resources.clear()
        for resource in resources:
            aclose = getattr(resource, "aclose", None)
            if aclose is not None:
                await aclose()
                continue
            close = getattr(resource, "close", None)
            if close is not None:
                close()

    def resolve(self, path: str | Path) -> Path:
        """A path from the configuration, relative to the configuration file's directory."""
        candidate = Path(path)
        if candidate.is_absolute() or self.config_dir is None:
            return candidate
        return self.config_dir / candidate


SignalFactory = Callable[[Any, SignalContext], Signal]
# YAML `type:` -> (config model, factory). Filled by the modules in `switchyard.signals`.
SIGNALS: dict[str, tuple[type[BaseModel], SignalFactory]] = {}


FactoryT = TypeVar("FactoryT", bound=SignalFactory)


def register_signal(
    type_name: str, config_model: type[BaseModel]
) -> Callable[[FactoryT], FactoryT]:
    """Register a factory (often the signal class itself) for YAML `type: type_name`."""

    def wrap(factory: FactoryT) -> FactoryT:
        SIGNALS[type_name] = (config_model, factory)
        return factory

    return wrap
