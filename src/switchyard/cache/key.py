"""Request normalisation: which requests may use the cache, and their keys."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import orjson

from switchyard.cache.base import CacheKey
from switchyard.config.cache import CacheConfig
from switchyard.types import RequestView

SHARED_TENANT = "*shared*"
# Body fields that do not change the answer (or are part of the key in another form).
_VOLATILE_FIELDS = frozenset(
    {"messages", "prompt", "model", "stream", "stream_options", "user", "metadata", "store",
     "service_tier", "request_id", "x_switchyard"}
)
_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Unicode NFKC, case-folded, whitespace collapsed: what an exact key compares."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def ineligibility(view: RequestView, body: Mapping[str, Any], cfg: CacheConfig) -> str | None:
    """Why this request must not be served from (or stored in) the cache; None = eligible.

    A missing `temperature` counts as deterministic: the server default is not known here,
    and clients that want sampled answers say so explicitly.
    """
    if (view.has_tools or body.get("tools") or body.get("functions")) and not cfg.cache_tools:
        return "tools"
    if _number(body.get("n"), 1.0) > 1 and not cfg.cache_multiple_choices:
        return "n"
    if _number(body.get("temperature"), 0.0) > 0 and not cfg.cache_sampled:
        return "temperature"
    if not view.last_user_text.strip():
        return "no_user_text"
    if _has_non_text_content(body):
        return "non_text_content"
    return None


def _has_non_text_content(body: Mapping[str, Any]) -> bool:
    """Images, audio or files: the key sees text only, so such requests never use the cache."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
                not isinstance(part, dict) or part.get("type") not in ("text", "input_text")
                for part in content):
            return True
    return False


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def _history(view: RequestView, turns: int) -> list[list[str]]:
    """The last `turns` non-system messages before the final user message."""
    if turns <= 0 or not view.messages:
        return []
    body = [m for m in view.messages if m.role not in ("system", "developer")]
    last_user = max((i for i, m in enumerate(body) if m.role == "user"), default=-1)
    earlier = body[:last_user] if last_user >= 0 else body
    return [[m.role, normalise_text(m.text)] for m in earlier[-turns:]]


def make_key(
    view: RequestView, body: Mapping[str, Any], cfg: CacheConfig, tenant: str
) -> CacheKey:
    """The partition covers tenant scope, kind, model, system prompt, earlier turns (as
    configured) and generation parameters; the exact key adds the last user message."""
    scope_tenant = SHARED_TENANT if cfg.scope == "shared" else tenant
    params = {k: v for k, v in body.items() if k not in _VOLATILE_FIELDS}
    partition = _digest(
        scope_tenant.encode(),
        view.kind.encode(),
        view.model.encode(),
        normalise_text(view.system_text).encode(),
        orjson.dumps(_history(view, cfg.history_turns)),
        orjson.dumps(params, option=orjson.OPT_SORT_KEYS, default=str),
    )
    query_text = view.last_user_text.strip()
    exact = _digest(partition.encode(), normalise_text(query_text).encode())
    return CacheKey(tenant=scope_tenant, partition=partition, exact=exact, query_text=query_text)
