"""Evaluates the signals a routing policy needs, one request at a time, never failing it.

Only signals referenced by some decision condition are built. Cheap signals (class attribute
`cheap = True`) are awaited inline, one after the other: no task, no timeout, a few microseconds.
The others start first as concurrent tasks, each under `asyncio.timeout(timeout_s)`. A signal
that raises or times out yields SignalResult(error=..., labels=("error",) when the signal is
configured `fail_open: false`, else no labels): a signal error never fails a request.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from switchyard.config.routing import RoutingConfig
from switchyard.errors import ConfigError
from switchyard.signals.base import SIGNALS, Signal, SignalContext
from switchyard.types import RequestView, SignalResult

logger = logging.getLogger(__name__)

_RULES = "switchyard.signals.rules"
# YAML signal `type` -> the module whose import registers it (imported only when a configured,
# referenced signal needs it, so unused heavy dependencies are never loaded). A type missing
# here is looked for in `switchyard.signals.<type>`. Add one line per new signal type.
SIGNAL_MODULES: dict[str, str] = {
    "keyword": _RULES,
    "context_length": _RULES,
    "message_count": _RULES,
    "tools": _RULES,
    "header": _RULES,
    "metadata": _RULES,
    "tenant": _RULES,
    "embedding": "switchyard.signals.embedding_route",
    "domain": "switchyard.signals.domain",
    "complexity": "switchyard.signals.complexity",
    "language": "switchyard.signals.language",
    "jailbreak": "switchyard.signals.jailbreak",
    "pii": "switchyard.signals.pii",
    "learned_router": "switchyard.routing.learned",
}
ERROR_LABEL = "error"


@dataclass(frozen=True, slots=True)
class RunnerEntry:
    """A built signal with the runtime settings from its configuration."""

    name: str
    signal: Signal
    timeout_s: float = 1.0
    fail_open: bool = True

    @property
    def cheap(self) -> bool:
        return bool(getattr(self.signal, "cheap", False))

    def failure(self, error: str, started: float) -> SignalResult:
        return SignalResult(
            self.name,
            labels=() if self.fail_open else (ERROR_LABEL,),
            latency_ms=(time.perf_counter() - started) * 1000.0,
            error=error,
        )


def _registered(type_name: str, modules: Mapping[str, str]) -> str | None:
    """Import the module that registers `type_name` if needed; None when it is registered."""
    if type_name in SIGNALS:
        return None
    module = modules.get(type_name, f"switchyard.signals.{type_name}")
    try:
        importlib.import_module(module)
    except Exception as exc:  # a broken optional dependency is a configuration problem here
        return f"importing {module} failed: {type(exc).__name__}: {exc}"
    if type_name not in SIGNALS:
        return f"{module} does not register it"
    return None


def _with_latency(entry: RunnerEntry, result: SignalResult, started: float) -> SignalResult:
    return SignalResult(
        entry.name,
        result.labels,
        result.score,
        result.value,
        result.confidence,
        (time.perf_counter() - started) * 1000.0,
        result.error,
        result.details,
    )


class SignalRunner:
    """Runs a fixed set of signals over request views. Build once per configuration."""

    def __init__(
        self, entries: Iterable[RunnerEntry], context: SignalContext | None = None
    ) -> None:
        self.context = context
        ordered = tuple(entries)
        self.cheap_entries = tuple(e for e in ordered if e.cheap)
        self.concurrent_entries = tuple(e for e in ordered if not e.cheap)
        self.signals = {e.name: e.signal for e in ordered}

    @classmethod
    def from_config(
        cls,
        routing: RoutingConfig,
        context: SignalContext | None = None,
        modules: Mapping[str, str] = SIGNAL_MODULES,
    ) -> SignalRunner:
        """Build the signals some decision refers to; raise ConfigError when one cannot be."""
        context = context or SignalContext()
        referenced: set[str] = set()
        for decision in routing.decisions:
            referenced |= decision.when.signal_names()
            if decision.target_signal:
                referenced.add(decision.target_signal)
        # PII signals act on their own (redaction before forwarding) even when no rule names them
        referenced |= {s.name for s in routing.signals if s.type == "pii"}
        entries: list[RunnerEntry] = []
        problems: list[str] = []
        for index, config in enumerate(routing.signals):
            if config.name not in referenced:
                continue
            where = f"routing.signals.{index} ({config.name})"
            missing = _registered(config.type, modules)
            if missing is not None:
                problems.append(
                    f"{where}: no signal implementation for type {config.type!r} ({missing})"
                )
                continue
            try:
                signal = SIGNALS[config.type][1](config, context)
            except (ValueError, OSError, ImportError) as exc:
                problems.append(f"{where}: cannot build signal: {exc}")
                continue
            entries.append(RunnerEntry(config.name, signal, config.timeout_s, config.fail_open))
        if problems:
            raise ConfigError(problems)
        return cls(entries, context)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.signals)

    async def aclose(self) -> None:
        """Close signals that hold resources, then the shared resources of the build context."""
        for signal in self.signals.values():
            aclose = getattr(signal, "aclose", None)
            if aclose is not None:
                await aclose()
        if self.context is not None:
            await self.context.aclose()

    async def evaluate(self, view: RequestView) -> dict[str, SignalResult]:
        """Every built signal's result, keyed by signal name. Never raises for a signal error."""
        tasks = [
            asyncio.ensure_future(self._run_with_timeout(entry, view))
            for entry in self.concurrent_entries
        ]
        results: dict[str, SignalResult] = {}
        try:
            for entry in self.cheap_entries:
                results[entry.name] = await self._run_inline(entry, view)
            if tasks:
                for result in await asyncio.gather(*tasks):
                    results[result.name] = result
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
        return results

    @staticmethod
    async def _run_inline(entry: RunnerEntry, view: RequestView) -> SignalResult:
        started = time.perf_counter()
        try:
            result = await entry.signal.evaluate(view)
        except Exception as exc:
            logger.warning("signal %s failed: %s", entry.name, type(exc).__name__)
            return entry.failure(f"{type(exc).__name__}: {exc}", started)
        return _with_latency(entry, result, started)

    @staticmethod
    async def _run_with_timeout(entry: RunnerEntry, view: RequestView) -> SignalResult:
        started = time.perf_counter()
        try:
            # asyncio.timeout() cancels this task itself: no second task per signal (wait_for)
            async with asyncio.timeout(entry.timeout_s):
                result = await entry.signal.evaluate(view)
        except TimeoutError:
            logger.warning("signal %s timed out after %gs", entry.name, entry.timeout_s)
            return entry.failure(f"timeout after {entry.timeout_s:g}s", started)
        except Exception as exc:
            logger.warning("signal %s failed: %s", entry.name, type(exc).__name__)
            return entry.failure(f"{type(exc).__name__}: {exc}", started)
        return _with_latency(entry, result, started)
