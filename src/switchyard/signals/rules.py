"""Rule-based signals: keywords, context length, message count, tools, header, metadata, tenant.

All of them are cheap (pure CPU, microseconds): patterns are compiled, encodings loaded and the
common results built once, at construction (results are immutable and may be shared). A signal
matches iff its result has at least one label; numeric signals (context length, message count)
only set `value`, to be compared by decision conditions.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable

from switchyard.config.signals import (
    ContextLengthSignalConfig,
    HeaderSignalConfig,
    KeywordSignalConfig,
    MessageCountSignalConfig,
    MetadataSignalConfig,
    TenantSignalConfig,
    ToolsSignalConfig,
)
from switchyard.signals.base import SignalContext, register_signal
from switchyard.signals.tokens import TokenCounter, load_offline_encoding
from switchyard.types import RequestView, SignalResult

# Texts longer than this are tokenized in a worker thread (tiktoken releases the GIL), so a
# huge prompt does not stall the event loop.
LARGE_TEXT_CHARS = 32_768


def _labelled(name: str, label: str) -> SignalResult:
    return SignalResult(name, labels=(label,), score=1.0)


def _literal_pattern(keyword: str) -> str:
    """A literal keyword as a whole word: no word character may touch its word-like ends."""
    pattern = re.escape(keyword)
    if keyword[:1].isalnum() or keyword[:1] == "_":
        pattern = r"(?<!\w)" + pattern
    if keyword[-1:].isalnum() or keyword[-1:] == "_":
        pattern += r"(?!\w)"
    return pattern


@register_signal("keyword", KeywordSignalConfig)
class KeywordSignal:
    """Labels = the configured keywords found in the text, as written in the configuration.

    Literal keywords match as whole words (`sql` does not match `nosql`); `regex: true` takes
    each keyword as a regular expression searched anywhere. `match: all` needs every keyword.
    Literal keywords are first looked for as plain substrings (case-folded unless
    `case_sensitive`), and only the candidates found are confirmed by their whole-word regex.
    """

    cheap = True

    def __init__(self, config: KeywordSignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.config = config
        flags = 0 if config.case_sensitive else re.IGNORECASE
        keywords = config.keywords
        sources = keywords if config.regex else [_literal_pattern(k) for k in keywords]
        try:
            self.patterns = tuple(re.compile(source, flags) for source in sources)
            # For regexes, one combined search answers the common "no match" case in one pass.
            self.any_pattern = re.compile("|".join(f"(?:{s})" for s in sources), flags)
        except re.error as exc:
            raise ValueError(f"signal {config.name!r}: invalid regex: {exc}") from None
        self.fold = not config.case_sensitive
        self.needles: tuple[str, ...] | None = None
        if not config.regex:
            self.needles = tuple(k.casefold() if self.fold else k for k in keywords)
        self.keywords = tuple(keywords)
        self.match_all = config.match == "all"
        self.whole_conversation = config.scope == "conversation"
        self.no_match = SignalResult(self.name, value=0.0)

    async def evaluate(self, view: RequestView) -> SignalResult:
        text = view.conversation_text if self.whole_conversation else view.last_user_text
        if self.needles is not None:
            haystack = text.casefold() if self.fold else text
            candidates = [i for i, needle in enumerate(self.needles) if needle in haystack]
            if not candidates or (self.match_all and len(candidates) < len(self.needles)):
                return self.no_match
            return self._confirm(text, candidates)
        if self.any_pattern.search(text) is None:
            return self.no_match
        return self._confirm(text, range(len(self.patterns)))

    def _confirm(self, text: str, candidates: Iterable[int]) -> SignalResult:
        found: list[str] = []
        for index in candidates:
            if self.patterns[index].search(text) is not None:
                found.append(self.keywords[index])
            elif self.match_all:
                return self.no_match
        if not found:
            return self.no_match
        return SignalResult(self.name, labels=tuple(found), score=1.0, value=float(len(found)))


def _build_counter(config: ContextLengthSignalConfig, context: SignalContext) -> TokenCounter:
    encoder = context.shared(
        f"tiktoken:{config.encoding}", lambda: load_offline_encoding(config.encoding)
    )
    # one counter (and so one cache of counted texts) per encoding and fallback ratio
    return context.shared(
        f"token_counter:{config.encoding}:{config.bytes_per_token}",
        lambda: TokenCounter(encoder, config.bytes_per_token),
    )


@register_signal("context_length", ContextLengthSignalConfig)
class ContextLengthSignal:
    """Value = prompt tokens (tiktoken, offline files; bytes-per-token when unavailable)."""

    cheap = True

    def __init__(self, config: ContextLengthSignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.counter = _build_counter(config, context)

    @property
    def exact(self) -> bool:
        """True when counting with the real encoding, False when estimating from bytes."""
        return self.counter.encoder is not None

    async def evaluate(self, view: RequestView) -> SignalResult:
        size = sum(len(m.text) for m in view.messages) if view.messages else len(view.prompt)
        if size > LARGE_TEXT_CHARS and view.prompt_tokens <= 0:
            tokens = await asyncio.to_thread(self.counter.count_request, view)
        else:
            tokens = self.counter.count_request(view)
        return SignalResult(self.name, value=float(tokens))


@register_signal("message_count", MessageCountSignalConfig)
class MessageCountSignal:
    """Value = number of messages, or of user turns; a bare prompt counts as one of each."""

    cheap = True

    def __init__(self, config: MessageCountSignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.turns = config.count == "turns"
        # results are immutable: build the common small counts once
        self.results = tuple(SignalResult(self.name, value=float(n)) for n in range(64))

    async def evaluate(self, view: RequestView) -> SignalResult:
        if not view.messages:
            count = 1 if view.prompt else 0
        else:
            count = view.user_turns if self.turns else len(view.messages)
        if count < len(self.results):
            return self.results[count]
        return SignalResult(self.name, value=float(count))


@register_signal("tools", ToolsSignalConfig)
class ToolsSignal:
    """Label `tools` when the request offers tools/functions to the model."""

    cheap = True

    def __init__(self, config: ToolsSignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.matched = SignalResult(config.name, labels=("tools",), score=1.0, value=1.0)
        self.unmatched = SignalResult(config.name, value=0.0)

    async def evaluate(self, view: RequestView) -> SignalResult:
        return self.matched if view.has_tools else self.unmatched


@register_signal("header", HeaderSignalConfig)
class HeaderSignal:
    """Label = the header's value when it equals one of `values` or `pattern` finds a match."""

    cheap = True

    def __init__(self, config: HeaderSignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.header = config.header.lower()
        self.values = frozenset(config.values)
        try:
            self.pattern = re.compile(config.pattern) if config.pattern is not None else None
        except re.error as exc:
            raise ValueError(f"signal {config.name!r}: invalid pattern: {exc}") from None

        self.no_match = SignalResult(self.name)
        self.value_results = {v: _labelled(self.name, v) for v in self.values}

    async def evaluate(self, view: RequestView) -> SignalResult:
        value = view.headers.get(self.header)
        if value is None:
            return self.no_match
        known = self.value_results.get(value)
        if known is not None:
            return known
        if self.pattern is not None and self.pattern.search(value):
            return _labelled(self.name, value)
        return self.no_match


@register_signal("metadata", MetadataSignalConfig)
class MetadataSignal:
    """Label = `metadata[key]` when it is one of `values` (any value when `values` is empty)."""

    cheap = True

    def __init__(self, config: MetadataSignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.key = config.key
        self.values = frozenset(config.values)
        self.no_match = SignalResult(self.name)
        self.value_results = {v: _labelled(self.name, v) for v in self.values}

    async def evaluate(self, view: RequestView) -> SignalResult:
        value = view.metadata.get(self.key)
        if value is None:
            return self.no_match
        known = self.value_results.get(value)
        if known is not None:
            return known
        if self.values:
            return self.no_match
        return _labelled(self.name, value)


@register_signal("tenant", TenantSignalConfig)
class TenantSignal:
    """Label = the tenant when it is one of `tenants` (every tenant when the list is empty)."""

    cheap = True

    def __init__(self, config: TenantSignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.tenants = frozenset(config.tenants)
        self.no_match = SignalResult(self.name)
        self.tenant_results = {t: _labelled(self.name, t) for t in self.tenants}

    async def evaluate(self, view: RequestView) -> SignalResult:
        known = self.tenant_results.get(view.tenant)
        if known is not None:
            return known
        if self.tenants:
            return self.no_match
        return _labelled(self.name, view.tenant)
