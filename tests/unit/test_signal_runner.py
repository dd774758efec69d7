"""SignalRunner: inline cheap signals, concurrent slow ones, timeouts and errors never fatal."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import switchyard.signals.rules  # noqa: F401  (registers the rule signal types)
from switchyard.config.routing import RoutingConfig
from switchyard.errors import ConfigError
from switchyard.routing.engine import RoutingPolicy, decide
from switchyard.signals.base import SIGNALS, Signal, SignalContext
from switchyard.signals.runner import RunnerEntry, SignalRunner
from switchyard.types import Action, ChatMessage, RequestView, SignalResult

VIEW = RequestView("req", "auto", messages=(ChatMessage("user", "write python code"),))


class SleepySignal:
    cheap = False

    def __init__(self, name: str, delay_s: float, labels: tuple[str, ...] = ("hit",)) -> None:
        self.name = name
        self.delay_s = delay_s
        self.labels = labels

    async def evaluate(self, view: RequestView) -> SignalResult:
        await asyncio.sleep(self.delay_s)
        return SignalResult(self.name, labels=self.labels, score=0.9)


class BrokenSignal:
    def __init__(self, name: str, cheap: bool) -> None:
        self.name = name
        self.cheap = cheap

    async def evaluate(self, view: RequestView) -> SignalResult:
        raise RuntimeError("model exploded")


class TaskRecordingSignal:
    cheap = True

    def __init__(self) -> None:
        self.name = "inline"
        self.tasks: list[asyncio.Task[Any] | None] = []

    async def evaluate(self, view: RequestView) -> SignalResult:
        self.tasks.append(asyncio.current_task())
        return SignalResult("whatever-the-signal-says", labels=("x",))


async def test_cheap_signals_run_inline_in_the_callers_task() -> None:
    signal = TaskRecordingSignal()
    runner = SignalRunner([RunnerEntry("inline", signal)])
    results = await runner.evaluate(VIEW)
    assert signal.tasks == [asyncio.current_task()]
    # the runner names results after the configured signal and records latency
    assert results["inline"].name == "inline"
    assert results["inline"].labels == ("x",)
    assert results["inline"].latency_ms >= 0.0


async def test_slow_signals_run_concurrently_with_latency_recorded() -> None:
    runner = SignalRunner(
        [RunnerEntry(f"s{i}", SleepySignal(f"s{i}", 0.2), timeout_s=2.0) for i in range(3)]
    )
    started = time.perf_counter()
    results = await runner.evaluate(VIEW)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5  # three 0.2 s signals side by side, not one after the other
    assert sorted(results) == ["s0", "s1", "s2"]
    for result in results.values():
        assert result.labels == ("hit",)
        assert result.score == 0.9
        assert 150.0 <= result.latency_ms < 500.0


@pytest.mark.parametrize(("fail_open", "labels"), [(True, ()), (False, ("error",))])
async def test_timeout_fails_open_or_closed(fail_open: bool, labels: tuple[str, ...]) -> None:
    entry = RunnerEntry("slow", SleepySignal("slow", 5.0), timeout_s=0.05, fail_open=fail_open)
    started = time.perf_counter()
    results = await SignalRunner([entry]).evaluate(VIEW)
    assert time.perf_counter() - started < 1.0
    result = results["slow"]
    assert result.labels == labels
    assert result.error == "timeout after 0.05s"
    assert result.latency_ms >= 40.0


@pytest.mark.parametrize("cheap", [True, False])
@pytest.mark.parametrize(("fail_open", "labels"), [(True, ()), (False, ("error",))])
async def test_exception_becomes_an_error_result(
    cheap: bool, fail_open: bool, labels: tuple[str, ...]
) -> None:
    entry = RunnerEntry("broken", BrokenSignal("broken", cheap), fail_open=fail_open)
    ok = RunnerEntry("ok", SleepySignal("ok", 0.0))
    results = await SignalRunner([entry, ok]).evaluate(VIEW)
    assert results["broken"].error == "RuntimeError: model exploded"
    assert results["broken"].labels == labels
    assert results["ok"].labels == ("hit",)


async def test_fail_closed_error_drives_a_block_decision() -> None:
    config = RoutingConfig.model_validate(
        {
            "signals": [{"name": "guard", "type": "tools"}],
            "decisions": [
                {"name": "deny", "action": "block", "when": {"signal": "guard", "label": "bad"}}
            ],
            "default": "m",
        }
    )
    policy = RoutingPolicy.from_config(config)
    failing = RunnerEntry("guard", SleepySignal("guard", 5.0), timeout_s=0.01, fail_open=False)
    signals = await SignalRunner([failing]).evaluate(VIEW)
    assert decide(signals, policy).action == Action.BLOCK
    open_entry = RunnerEntry("guard", SleepySignal("guard", 5.0), timeout_s=0.01)
    signals = await SignalRunner([open_entry]).evaluate(VIEW)
    assert decide(signals, policy).name == "default"


async def test_cancelling_evaluate_cancels_slow_signal_tasks() -> None:
    sleepy = SleepySignal("slow", 5.0)
    runner = SignalRunner([RunnerEntry("slow", sleepy, timeout_s=10.0)])
    before = len(asyncio.all_tasks())
    outer = asyncio.ensure_future(runner.evaluate(VIEW))
    await asyncio.sleep(0.05)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == before


def routing(signals: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> RoutingConfig:
    return RoutingConfig.model_validate(
        {"signals": signals, "decisions": decisions, "default": "m"}
    )


async def test_from_config_builds_only_referenced_signals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config_model, keyword_factory = SIGNALS["keyword"]
    built: list[str] = []

    def counting_factory(config: Any, context: SignalContext) -> Signal:
        built.append(config.name)
        return keyword_factory(config, context)

    monkeypatch.setitem(SIGNALS, "keyword", (config_model, counting_factory))
    config = routing(
        [
            {"name": "code", "type": "keyword", "keywords": ["python"]},
            {"name": "unused", "type": "keyword", "keywords": ["java"]},
            {"name": "unused_ctx", "type": "context_length"},
            {"name": "turns", "type": "message_count", "timeout_s": 0.5, "fail_open": False},
        ],
        [
            {"name": "c", "model": "m", "when": {"signal": "code"}},
            {"name": "t", "model": "m", "when": {"not": {"signal": "turns", "gt": 3}}},
        ],
    )
    context = SignalContext()
    runner = SignalRunner.from_config(config, context)
    assert built == ["code"]
    assert context.resources == {}  # the unused context-length signal loaded no encoding
    assert runner.names == ("code", "turns")
    assert [e.name for e in runner.cheap_entries] == ["code", "turns"]
    assert runner.concurrent_entries == ()
    assert runner.cheap_entries[1].fail_open is False
    assert runner.cheap_entries[1].timeout_s == 0.5
    results = await runner.evaluate(VIEW)
    assert set(results) == {"code", "turns"}
    assert results["code"].labels == ("python",)
    assert results["turns"].value == 1


def test_from_config_reports_signals_that_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failing_factory(config: Any, context: SignalContext) -> Signal:
        raise ValueError("model file missing")

    monkeypatch.setitem(SIGNALS, "tools", (SIGNALS["tools"][0], failing_factory))
    monkeypatch.delitem(SIGNALS, "tenant")
    config = routing(
        [{"name": "t", "type": "tools"}, {"name": "who", "type": "tenant"}],
        [{"name": "c", "model": "m", "when": {"any": [{"signal": "t"}, {"signal": "who"}]}}],
    )
    with pytest.raises(ConfigError) as caught:
        SignalRunner.from_config(config, modules={"tenant": "switchyard.no_such_module"})
    problems = caught.value.problems
    assert problems[0] == "routing.signals.0 (t): cannot build signal: model file missing"
    assert problems[1] == (
        "routing.signals.1 (who): no signal implementation for type 'tenant' (importing "
        "switchyard.no_such_module failed: ModuleNotFoundError: No module named "
        "'switchyard.no_such_module')"
    )
    with pytest.raises(ConfigError) as caught:
        SignalRunner.from_config(config)  # the rules module is imported but lacks `tenant` now
    assert caught.value.problems[1] == (
        "routing.signals.1 (who): no signal implementation for type 'tenant' "
        "(switchyard.signals.rules does not register it)"
    )


def test_every_configurable_signal_type_has_a_registering_module() -> None:
    from typing import get_args

    from switchyard.config.signals import SignalConfig
    from switchyard.signals.runner import SIGNAL_MODULES

    union = get_args(SignalConfig)[0]
    for model in get_args(union):
        type_name = get_args(model.model_fields["type"].annotation)[0]
        assert type_name in SIGNAL_MODULES, type_name


async def test_aclose_closes_signals_and_shared_resources() -> None:
    closed: list[str] = []

    class Resource:
        async def aclose(self) -> None:
            closed.append("resource")

    class ClosableSignal(SleepySignal):
        async def aclose(self) -> None:
            closed.append(self.name)

    context = SignalContext()
    context.shared("r", Resource)
    runner = SignalRunner([RunnerEntry("sig", ClosableSignal("sig", 0.0))], context)
    await runner.aclose()
    assert closed == ["sig", "resource"]
    assert context.resources == {}
