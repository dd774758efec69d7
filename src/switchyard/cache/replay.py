"""Cached responses in and out: assemble a finished SSE stream into one JSON body, and replay
a stored JSON body as JSON (non-streaming clients) or as a valid SSE stream (streaming ones).

The cache stores one canonical form, an OpenAI `chat.completion` / `text_completion` body.
A stream is cacheable only when it ended normally: every choice has a `stop` or `length`
finish reason, no error event arrived, and the `[DONE]` sentinel was seen.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

CACHEABLE_FINISH = frozenset({"stop", "length"})
DONE = b"data: [DONE]\n\n"
REPLAY_PIECE_CHARS = 96


def _events(raw: bytes) -> Iterator[bytes]:
    """`data:` payloads of an SSE byte stream (comments and other fields ignored)."""
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
        if data:
            yield b"\n".join(data)


def _merge_choice(slot: dict[str, Any], choice: dict[str, Any], chat: bool) -> None:
    if chat:
        delta = choice.get("delta") or {}
        if delta.get("tool_calls") or delta.get("function_call"):
            raise ValueError("tool calls are not cached")
        if delta.get("role"):
            slot["role"] = delta["role"]
        slot["text"] += delta.get("content") or ""
        if delta.get("refusal"):
            slot["refusal"] = (slot.get("refusal") or "") + delta["refusal"]
    else:
        slot["text"] += choice.get("text") or ""
    if choice.get("finish_reason"):
        slot["finish_reason"] = choice["finish_reason"]


def assemble_sse(raw: bytes | Iterable[bytes]) -> bytes | None:
    """The JSON body equivalent to a complete SSE stream, or None if it did not end normally."""
    data = raw if isinstance(raw, bytes) else b"".join(raw)
    head: dict[str, Any] | None = None
    slots: dict[int, dict[str, Any]] = {}
    usage: Any = None
    done = False
    try:
        for payload in _events(data):
            if payload.strip() == b"[DONE]":
                done = True
                continue
            if done:
                return None
            event = orjson.loads(payload)
            if not isinstance(event, dict) or "error" in event:
                return None
            head = head or event
            usage = event.get("usage") or usage
            chat = event.get("object") == "chat.completion.chunk"
            for choice in event.get("choices") or []:
                slot = slots.setdefault(int(choice.get("index", 0)), {"text": ""})
                _merge_choice(slot, choice, chat)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return None
    if not done or head is None or not slots:
        return None
    if any(slot.get("finish_reason") not in CACHEABLE_FINISH for slot in slots.values()):
        return None
    return orjson.dumps(_body_from_chunks(head, slots, usage))


def _body_from_chunks(
    head: dict[str, Any], slots: dict[int, dict[str, Any]], usage: Any
) -> dict[str, Any]:
    chat = head.get("object") == "chat.completion.chunk"
    choices: list[dict[str, Any]] = []
    for index in sorted(slots):
        slot = slots[index]
        if chat:
            message: dict[str, Any] = {"role": slot.get("role", "assistant"),
                                       "content": slot["text"]}
            if slot.get("refusal"):
                message["refusal"] = slot["refusal"]
            choices.append({"index": index, "message": message,
                            "finish_reason": slot["finish_reason"]})
        else:
            choices.append({"index": index, "text": slot["text"],
                            "finish_reason": slot["finish_reason"]})
    body: dict[str, Any] = {
        "id": head.get("id", ""),
        "object": "chat.completion" if chat else "text_completion",
        "created": head.get("created", int(time.time())),
        "model": head.get("model", ""),
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage
    return body


def cacheable_body(body: bytes) -> bool:
    """True when a non-streaming response body is a complete completion worth caching."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(parsed, dict) or "error" in parsed:
        return False
    choices = parsed.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("finish_reason") not in CACHEABLE_FINISH:
            return False
        message = choice.get("message")
        if isinstance(message, dict) and (message.get("tool_calls") or
                                          message.get("function_call")):
            return False
    return True


def _fresh(body: bytes, request_id: str | None) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(body)
    if request_id:
        prefix = "chatcmpl" if parsed.get("object") == "chat.completion" else "cmpl"
        parsed["id"] = f"{prefix}-{request_id}"
    parsed["created"] = int(time.time())
    return parsed


def replay_json(body: bytes, request_id: str | None = None) -> bytes:
    """The stored body as a non-streaming response, with a fresh id and timestamp."""
    return orjson.dumps(_fresh(body, request_id))


def _pieces(text: str) -> list[str]:
    return [text[i:i + REPLAY_PIECE_CHARS] for i in range(0, len(text), REPLAY_PIECE_CHARS)]


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def replay_sse(
    body: bytes, request_id: str | None = None, include_usage: bool = False
) -> list[bytes]:
    """The stored body as SSE events: role, content pieces, finish, optional usage, [DONE]."""
    parsed = _fresh(body, request_id)
    chat = parsed.get("object") == "chat.completion"
    head = {"id": parsed.get("id", ""),
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": parsed["created"], "model": parsed.get("model", "")}
    events: list[bytes] = []
    for choice in parsed.get("choices", []):
        index = choice.get("index", 0)
        if chat:
            message = choice.get("message") or {}
            text = message.get("content") or ""
            events.append(_sse({**head, "choices": [{
                "index": index, "delta": {"role": message.get("role", "assistant"),
                                          "content": ""}, "finish_reason": None}]}))
            events.extend(_sse({**head, "choices": [{
                "index": index, "delta": {"content": piece}, "finish_reason": None}]})
                for piece in _pieces(text))
            final: dict[str, Any] = {"index": index, "delta": {},
                                     "finish_reason": choice.get("finish_reason")}
        else:
            events.extend(_sse({**head, "choices": [{
                "index": index, "text": piece, "finish_reason": None}]})
                for piece in _pieces(choice.get("text") or ""))
            final = {"index": index, "text": "", "finish_reason": choice.get("finish_reason")}
        events.append(_sse({**head, "choices": [final]}))
    if include_usage and parsed.get("usage") is not None:
        events.append(_sse({**head, "choices": [], "usage": parsed["usage"]}))
    events.append(DONE)
    return events
