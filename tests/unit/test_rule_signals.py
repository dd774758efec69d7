"""Rule-based signals: keyword, context length, message count, tools, header, metadata, tenant."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from switchyard.config.signals import SignalConfig
from switchyard.signals import tokens
from switchyard.signals.base import SIGNALS, Signal, SignalContext
from switchyard.signals.rules import ContextLengthSignal, KeywordSignal
from switchyard.signals.tokens import (
    TOKENS_PER_MESSAGE,
    TOKENS_REPLY_PRIMING,
    TokenCountCache,
    TokenCounter,
    load_offline_encoding,
)
from switchyard.types import ChatMessage, RequestView

_CONFIG = TypeAdapter(SignalConfig)


def build(context: SignalContext | None = None, **config: Any) -> Signal:
    parsed = _CONFIG.validate_python({"name": "s", **config})
    factory = SIGNALS[parsed.type][1]
    return factory(parsed, context or SignalContext())


def chat(*turns: tuple[str, str], **extra: Any) -> RequestView:
    messages = tuple(ChatMessage(role, text) for role, text in turns)
    return RequestView("req", "auto", messages=messages, **extra)


async def labels_of(signal: Signal, view: RequestView) -> tuple[str, ...]:
    return (await signal.evaluate(view)).labels


# --- keyword ---------------------------------------------------------------------------------

KEYWORD_CASES = [
    # (config, user text, expected labels)
    ({"keywords": ["python", "rust"]}, "Write PYTHON please", ("python",)),
    ({"keywords": ["python", "rust"]}, "python and Rust", ("python", "rust")),
    ({"keywords": ["python"], "case_sensitive": True}, "Write PYTHON please", ()),
    ({"keywords": ["sql"]}, "nosql databases", ()),  # literal keywords match whole words
    ({"keywords": ["sql"]}, "an SQL query.", ("sql",)),
    ({"keywords": ["c++"]}, "templates in C++?", ("c++",)),
    ({"keywords": ["a.b"]}, "axb", ()),  # literal: the dot is not a wildcard
    ({"keywords": ["python", "rust"], "match": "all"}, "python only", ()),
    ({"keywords": ["python", "rust"], "match": "all"}, "rust, then python", ("python", "rust")),
    (
        {"keywords": [r"def\s+\w+\(", r"\bimport\b"], "regex": True},
        "def foo(x):",
        (r"def\s+\w+\(",),
    ),
    ({"keywords": [r"^hello"], "regex": True}, "well, hello", ()),
    ({"keywords": [r"HeLLo"], "regex": True}, "hello", ("HeLLo",)),
    ({"keywords": [r"HeLLo"], "regex": True, "case_sensitive": True}, "hello", ()),
    ({"keywords": ["code review", "code"]}, "please do a code review", ("code review", "code")),
]


@pytest.mark.parametrize(("config", "text", "expected"), KEYWORD_CASES)
async def test_keyword_cases(config: dict[str, Any], text: str, expected: tuple[str, ...]) -> None:
    signal = build(type="keyword", **config)
    result = await signal.evaluate(chat(("user", text)))
    assert result.labels == expected
    assert result.name == "s"
    assert result.score == (1.0 if expected else 0.0)


async def test_keyword_scope_last_user_vs_conversation() -> None:
    view = chat(("system", "you write python"), ("user", "tell me a joke"), ("assistant", "ok"))
    assert await labels_of(build(type="keyword", keywords=["python"]), view) == ()
    conversation = build(type="keyword", keywords=["python"], scope="conversation")
    assert await labels_of(conversation, view) == ("python",)
    later = chat(("user", "python?"), ("assistant", "yes"), ("user", "and now?"))
    assert await labels_of(build(type="keyword", keywords=["python"]), later) == ()


async def test_keyword_on_completion_prompt() -> None:
    view = RequestView("r", "auto", kind="completion", prompt="def main(): pass  # python")
    assert await labels_of(build(type="keyword", keywords=["python"]), view) == ("python",)


def test_keyword_invalid_regex_fails_validation() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        build(type="keyword", keywords=["(unclosed"], regex=True)


def test_unknown_offline_encoding_is_reported() -> None:
    assert load_offline_encoding("p50k_base") is None


def test_keyword_patterns_compiled_once() -> None:
    signal = build(type="keyword", keywords=["python"])
    assert isinstance(signal, KeywordSignal)
    assert signal.cheap is True
    assert signal.patterns[0].flags & 2  # re.IGNORECASE


# --- context length --------------------------------------------------------------------------

KNOWN_COUNTS = [
    # text, cl100k_base tokens, o200k_base tokens
    ("hello world", 2, 2),
    ("tiktoken is great!", 6, 6),
    ("The quick brown fox jumps over the lazy dog.", 10, 10),
]


@pytest.fixture(scope="module")
def context() -> SignalContext:
    return SignalContext()


@pytest.mark.parametrize(("text", "cl100k", "o200k"), KNOWN_COUNTS)
async def test_context_length_matches_known_tiktoken_counts(
    context: SignalContext, text: str, cl100k: int, o200k: int
) -> None:
    prompt = RequestView("r", "auto", kind="completion", prompt=text)
    for encoding, expected in (("cl100k_base", cl100k), ("o200k_base", o200k)):
        signal = build(context, type="context_length", encoding=encoding)
        assert isinstance(signal, ContextLengthSignal)
        assert signal.exact
        result = await signal.evaluate(prompt)
        assert result.value == expected
        assert result.labels == ()


async def test_context_length_counts_chat_overhead(context: SignalContext) -> None:
    signal = build(context, type="context_length")
    view = chat(("system", "hello world"), ("user", "tiktoken is great!"))
    expected = TOKENS_REPLY_PRIMING + 2 * TOKENS_PER_MESSAGE + 2 + 6
    assert (await signal.evaluate(view)).value == expected


async def test_context_length_uses_given_prompt_tokens(context: SignalContext) -> None:
    signal = build(context, type="context_length")
    view = RequestView("r", "auto", prompt_tokens=12345)
    assert (await signal.evaluate(view)).value == 12345


async def test_context_length_large_text_counted_off_loop(context: SignalContext) -> None:
    signal = build(context, type="context_length")
    assert isinstance(signal, ContextLengthSignal)
    text = "hello world " * 5000  # 60,000 chars: tokenized in a worker thread
    view = RequestView("r", "auto", kind="completion", prompt=text)
    expected = signal.counter.count_text(text)
    assert 9_999 <= expected <= 10_001
    assert (await signal.evaluate(view)).value == expected


def test_encoding_and_counter_shared_through_context(context: SignalContext) -> None:
    first = build(context, type="context_length")
    second = build(context, type="context_length")
    other = build(context, type="context_length", bytes_per_token=3.0)
    assert isinstance(first, ContextLengthSignal) and isinstance(second, ContextLengthSignal)
    assert isinstance(other, ContextLengthSignal)
    assert first.counter is second.counter
    assert other.counter is not first.counter
    assert other.counter.encoder is first.counter.encoder
    assert "tiktoken:cl100k_base" in context.resources


async def test_long_texts_are_counted_once(context: SignalContext) -> None:
    signal = build(context, type="context_length")
    assert isinstance(signal, ContextLengthSignal)
    system = "You are a careful assistant. " * 40  # 1,160 characters: cached
    first = chat(("system", system), ("user", "hello world"))
    second = chat(("system", system), ("user", "tiktoken is great!"))
    one = (await signal.evaluate(first)).value
    assert signal.counter.cache.get(system) == 241
    assert signal.counter.cache.get("hello world") is None  # short texts are not kept
    two = (await signal.evaluate(second)).value
    assert one is not None and two is not None
    assert two - one == 6 - 2


def test_token_count_cache_is_bounded() -> None:
    cache = TokenCountCache(max_chars=1000, min_chars=10)
    cache.put("a" * 600, 1)
    cache.put("b" * 300, 2)
    assert cache.get("a" * 600) == 1 and cache.chars == 900
    cache.put("c" * 200, 3)  # would exceed 1000: start over
    assert cache.get("a" * 600) is None
    assert cache.get("c" * 200) == 3 and cache.chars == 200
    cache.put("d" * 5000, 4)  # larger than the whole cache: not kept
    assert cache.get("d" * 5000) is None


async def test_context_length_bytes_per_token_fallback() -> None:
    unavailable = SignalContext(resources={"tiktoken:cl100k_base": None})  # could not load
    signal = build(unavailable, type="context_length", bytes_per_token=2.0)
    assert isinstance(signal, ContextLengthSignal)
    assert not signal.exact
    view = RequestView("r", "auto", kind="completion", prompt="x" * 40)
    assert (await signal.evaluate(view)).value == 20
    assert TokenCounter(None, 4.0).count_text("é" * 6) == 3  # UTF-8 bytes, not characters


def test_offline_load_never_touches_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tiktoken.registry

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # force a real load from files
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    encoder = load_offline_encoding("cl100k_base", cache_dir=tmp_path)
    assert encoder is not None
    assert len(encoder.encode_ordinary("hello world")) == 2
    assert len(list(tmp_path.iterdir())) == 1
    assert "TIKTOKEN_CACHE_DIR" not in os.environ


def test_hash_mismatch_gives_no_encoding_instead_of_a_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setitem(tokens._EXPECTED_SHA256, "cl100k_base", "0" * 64)
    assert load_offline_encoding("cl100k_base", cache_dir=tmp_path) is None
    assert list(tmp_path.iterdir()) == []


# --- message count, tools, header, metadata, tenant ------------------------------------------


async def test_message_count_messages_and_turns() -> None:
    view = chat(("system", "s"), ("user", "a"), ("assistant", "b"), ("user", "c"))
    messages = build(type="message_count")
    turns = build(type="message_count", count="turns")
    assert (await messages.evaluate(view)).value == 4
    assert (await turns.evaluate(view)).value == 2
    prompt = RequestView("r", "auto", kind="completion", prompt="hi")
    assert (await turns.evaluate(prompt)).value == 1
    assert (await messages.evaluate(view)).labels == ()


async def test_tools_signal() -> None:
    signal = build(type="tools")
    assert await labels_of(signal, chat(("user", "x"), has_tools=True)) == ("tools",)
    assert await labels_of(signal, chat(("user", "x"))) == ()


HEADER_CASES = [
    ({"header": "X-Tier", "values": ["gold", "silver"]}, {"x-tier": "gold"}, ("gold",)),
    ({"header": "X-Tier", "values": ["gold"]}, {"x-tier": "Gold"}, ()),
    ({"header": "X-Tier", "values": ["gold"]}, {}, ()),
    ({"header": "user-agent", "pattern": r"^curl/"}, {"user-agent": "curl/8.1"}, ("curl/8.1",)),
    ({"header": "user-agent", "pattern": r"^curl/"}, {"user-agent": "python"}, ()),
]


@pytest.mark.parametrize(("config", "headers", "expected"), HEADER_CASES)
async def test_header_signal(
    config: dict[str, Any], headers: dict[str, str], expected: tuple[str, ...]
) -> None:
    view = chat(("user", "x"), headers=headers)
    assert await labels_of(build(type="header", **config), view) == expected


async def test_metadata_signal() -> None:
    with_values = build(type="metadata", key="team", values=["search"])
    any_value = build(type="metadata", key="team")
    search = chat(("user", "x"), metadata={"team": "search"})
    ads = chat(("user", "x"), metadata={"team": "ads"})
    assert await labels_of(with_values, search) == ("search",)
    assert await labels_of(with_values, ads) == ()
    assert await labels_of(any_value, ads) == ("ads",)
    assert await labels_of(any_value, chat(("user", "x"))) == ()


async def test_tenant_signal() -> None:
    every = build(type="tenant")
    listed = build(type="tenant", tenants=["acme"])
    acme = chat(("user", "x"), tenant="acme")
    other = chat(("user", "x"), tenant="globex")
    assert await labels_of(every, other) == ("globex",)
    assert await labels_of(listed, acme) == ("acme",)
    assert await labels_of(listed, other) == ()


RULE_TYPES = ("keyword", "context_length", "message_count", "tools", "header", "metadata", "tenant")


def test_every_rule_signal_is_cheap_and_registered() -> None:
    for type_name in RULE_TYPES:
        factory = SIGNALS[type_name][1]
        assert getattr(factory, "cheap", False) is True, type_name
