"""OpenAI wire format: request parsing into a RequestView, usage extraction, SSE helpers.

Request bodies are kept as plain dicts so unknown fields pass through untouched; only `model`
is rewritten before forwarding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson

from switchyard.errors import InvalidJSONError, MissingFieldError, RequestError
from switchyard.types import ChatMessage, RequestView, Usage

SSE_DONE = b"data: [DONE]\n\n"


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSONError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidJSONError("request body must be a JSON object")
    return body


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        ]
        return "\n".join(parts)
    return ""


def _messages(body: Mapping[str, Any]) -> tuple[ChatMessage, ...]:
    raw = body.get("messages")
    if raw is None:
        raise MissingFieldError("missing required field: messages", param="messages")
    if not isinstance(raw, list) or not raw:
        raise RequestError("`messages` must be a non-empty array", param="messages")
    messages: list[ChatMessage] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            raise RequestError(
                f"messages[{index}] must be an object with a string `role`",
                param=f"messages[{index}]",
            )
        messages.append(ChatMessage(item["role"], _content_text(item.get("content"))))
    return tuple(messages)


def _prompt(body: Mapping[str, Any]) -> str:
    raw = body.get("prompt")
    if raw is None:
        raise MissingFieldError("missing required field: prompt", param="prompt")
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and all(isinstance(p, str) for p in raw):
        return "\n".join(raw)
    raise RequestError("`prompt` must be a string or an array of strings", param="prompt")


def build_view(
    body: Mapping[str, Any],
    kind: Literal["chat", "completion"],
    request_id: str,
    tenant: str,
    headers: Mapping[str, str],
) -> RequestView:
    """Validate the fields routing needs and summarise the request. Raises RequestError."""
    model = body.get("model")
    if model is None:
        raise MissingFieldError("missing required field: model", param="model")
    if not isinstance(model, str) or not model:
        raise RequestError("`model` must be a non-empty string", param="model")
    metadata_raw = body.get("metadata")
    metadata = (
        {str(k): str(v) for k, v in metadata_raw.items()} if isinstance(metadata_raw, dict) else {}
    )
    user = body.get("user")
    return RequestView(
        request_id=request_id,
        model=model,
        kind=kind,
        messages=_messages(body) if kind == "chat" else (),
        prompt=_prompt(body) if kind == "completion" else "",
        has_tools=bool(body.get("tools") or body.get("functions")),
        stream=bool(body.get("stream")),
        tenant=tenant,
        headers=headers,
        metadata=metadata,
        user=user if isinstance(user, str) else "",
    )


def usage_from(payload: Mapping[str, Any]) -> Usage | None:
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    return Usage(
        prompt_tokens=prompt if isinstance(prompt, int) else 0,
        completion_tokens=completion if isinstance(completion, int) else 0,
    )


def usage_from_sse(buffer: bytes) -> Usage | None:
    """Find the last `usage` object in SSE bytes (the include_usage chunk)."""
    found: Usage | None = None
    for line in buffer.split(b"\n"):
        if b'"usage"' not in line or not line.startswith(b"data:"):
            continue
        try:
            payload = orjson.loads(line[5:].strip())
        except orjson.JSONDecodeError:
            continue
        if isinstance(payload, dict):
            found = usage_from(payload) or found
    return found


def sse_error_event(message: str, code: str) -> bytes:
    payload = orjson.dumps(
        {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}
    )
    return b"event: error\ndata: " + payload + b"\n\n" + SSE_DONE


def estimate_tokens(text: str) -> int:
    """Cheap fallback when upstream reports no usage: ~4 characters per token."""
    return (len(text) + 3) // 4


class StreamUsage:
    """Follows a relayed SSE stream: its usage (reported or estimated) and, when the client
    asked for `stream_options.include_usage` but the upstream sent none (llama.cpp does not),
    a usage chunk inserted just before `data: [DONE]` (counts estimated: one token per event)."""

    __slots__ = ("_prompt_tokens", "_inject", "_tail", "_events")

    def __init__(self, prompt_tokens: int, inject: bool) -> None:
        self._prompt_tokens = prompt_tokens
        self._inject = inject
        self._tail = b""
        self._events = 0

    def feed(self, chunk: bytes) -> bytes:
        self._events += chunk.count(b"data: {")
        self._tail = (self._tail + chunk)[-_TAIL_BYTES:]
        if not self._inject or b"data: [DONE]" not in chunk or usage_from_sse(self._tail):
            return chunk
        cut = chunk.index(b"data: [DONE]")
        return chunk[:cut] + self._usage_event() + chunk[cut:]

    @property
    def done(self) -> bool:
        return b"data: [DONE]" in self._tail

    def usage(self) -> Usage:
        return usage_from_sse(self._tail) or self._estimate()

    def _estimate(self) -> Usage:
        return Usage(self._prompt_tokens, max(0, self._events - 1))

    def _usage_event(self) -> bytes:
        usage = self._estimate()
        template: dict[str, Any] = {"object": "chat.completion.chunk"}
        for line in reversed(self._tail.split(b"\n")):
            if line.startswith(b"data: {"):
                try:
                    parsed = orjson.loads(line[6:])
                except orjson.JSONDecodeError:
                    continue
                if isinstance(parsed, dict):
                    template = parsed
                    break
        template["choices"] = []
        template["usage"] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        }
        return b"data: " + orjson.dumps(template) + b"\n\n"


_TAIL_BYTES = 4096
