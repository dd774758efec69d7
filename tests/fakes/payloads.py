"""Deterministic OpenAI wire payloads produced by the fake backends.

Everything here is a pure function of its arguments so tests can compare bytes exactly.
"""

from __future__ import annotations

from typing import Any

import orjson

CREATED = 1_700_000_000
PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7


def usage(prompt_tokens: int = PROMPT_TOKENS, completion_tokens: int = COMPLETION_TOKENS) -> (
        dict[str, int]):
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(model: str, content: str, backend: str) -> bytes:
    return orjson.dumps(
        {
            "id": f"chatcmpl-{backend}",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "system_fingerprint": backend,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage(),
        }
    )


def text_completion(model: str, content: str, backend: str) -> bytes:
    return orjson.dumps(
        {
            "id": f"cmpl-{backend}",
            "object": "text_completion",
            "created": CREATED,
            "model": model,
            "system_fingerprint": backend,
            "choices": [{"index": 0, "text": content, "logprobs": None, "finish_reason": "stop"}],
            "usage": usage(),
        }
    )


def models_list(names: list[str]) -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "created": CREATED, "owned_by": "fake"} for n in names
            ],
        }
    )


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def stream_piece(text: str, index: int) -> str:
    """The text carried by chunk `index` of a stream (also what a client reassembles)."""
    return f"{text}{index} "


def chat_stream_events(
    model: str, text: str, backend: str, chunks: int, include_usage: bool
) -> list[bytes]:
    """SSE events of a chat stream: role chunk, `chunks` content chunks, finish, usage, DONE."""
    base = {
        "id": f"chatcmpl-{backend}",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "system_fingerprint": backend,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        body: dict[str, Any] = {**base, "choices": [choice]}
        if include_usage:
            body["usage"] = None
        return _sse(body)

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": stream_piece(text, i)}) for i in range(chunks)]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append(_sse({**base, "choices": [], "usage": usage()}))
    events.append(b"data: [DONE]\n\n")
    return events


def completion_stream_events(
    model: str, text: str, backend: str, chunks: int, include_usage: bool
) -> list[bytes]:
    base = {
        "id": f"cmpl-{backend}",
        "object": "text_completion",
        "created": CREATED,
        "model": model,
        "system_fingerprint": backend,
    }

    def chunk(piece: str, finish: str | None = None) -> bytes:
        choice = {"index": 0, "text": piece, "logprobs": None, "finish_reason": finish}
        return _sse({**base, "choices": [choice]})

    events = [chunk(stream_piece(text, i)) for i in range(chunks)]
    events.append(chunk("", "stop"))
    if include_usage:
        events.append(_sse({**base, "choices": [], "usage": usage()}))
    events.append(b"data: [DONE]\n\n")
    return events


def error_body(message: str, status: int) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": "fake_error", "param": None, "code": str(status)}}
    )
