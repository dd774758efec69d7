"""SSE assembly and replay: only normally completed streams are cacheable; replays are valid."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from switchyard.cache.replay import assemble_sse, cacheable_body, replay_json, replay_sse


def chunk(content: str | None = None, finish: str | None = None, role: str | None = None,
          index: int = 0) -> bytes:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    event = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1,
             "model": "m1", "choices": [{"index": index, "delta": delta,
                                         "finish_reason": finish}]}
    return b"data: " + orjson.dumps(event) + b"\n\n"


USAGE = b'data: {"id":"chatcmpl-up","object":"chat.completion.chunk","created":1,' \
        b'"model":"m1","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,' \
        b'"total_tokens":10}}\n\n'
COMPLETE = [chunk("", role="assistant"), chunk("Hello"), chunk(", world"),
            chunk(finish="stop"), USAGE, b"data: [DONE]\n\n"]


def parse_sse(events: list[bytes]) -> list[Any]:
    """Strict SSE check: every event is `data: <json or [DONE]>` and a blank line."""
    out: list[Any] = []
    for event in events:
        assert event.startswith(b"data: ")
        assert event.endswith(b"\n\n")
        payload = event[6:-2]
        assert b"\n" not in payload
        out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return out


def test_complete_stream_assembles_to_a_chat_completion() -> None:
    body = assemble_sse(COMPLETE)
    assert body is not None
    parsed = orjson.loads(body)
    assert parsed["object"] == "chat.completion"
    assert parsed["choices"][0]["message"] == {"role": "assistant", "content": "Hello, world"}
    assert parsed["choices"][0]["finish_reason"] == "stop"
    assert parsed["usage"]["total_tokens"] == 10
    assert cacheable_body(body)


def test_assembly_accepts_split_and_crlf_chunks() -> None:
    raw = b"".join(COMPLETE).replace(b"\n\n", b"\r\n\r\n")
    pieces = [raw[i:i + 7] for i in range(0, len(raw), 7)]
    assert assemble_sse(pieces) == assemble_sse(COMPLETE)


@pytest.mark.parametrize(
    "events",
    [
        COMPLETE[:-1],  # no [DONE]: aborted / disconnected
        COMPLETE[:3] + [b"data: [DONE]\n\n"],  # no finish_reason
        [chunk("Hel", role="assistant"),
         b'data: {"error": {"message": "upstream failed mid-stream"}}\n\n',
         b"data: [DONE]\n\n"],
        [chunk("x", role="assistant"), chunk(finish="content_filter"), b"data: [DONE]\n\n"],
        [chunk("x", role="assistant"), b"data: {not json\n\n", chunk(finish="stop"),
         b"data: [DONE]\n\n"],
        [b"data: [DONE]\n\n"],
        [],
    ],
)
def test_incomplete_or_failed_streams_are_not_cacheable(events: list[bytes]) -> None:
    assert assemble_sse(events) is None


def test_tool_call_streams_are_not_cacheable() -> None:
    tool = b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":' \
           b'{"tool_calls":[{"index":0,"function":{"name":"f"}}]},"finish_reason":null}]}\n\n'
    assert assemble_sse([chunk("", role="assistant"), tool, chunk(finish="stop"),
                         b"data: [DONE]\n\n"]) is None


def test_replay_sse_is_valid_and_reassembles_to_the_same_answer() -> None:
    long_text = "word " * 100
    body = orjson.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m1",
                         "choices": [{"index": 0, "message": {"role": "assistant",
                                                              "content": long_text},
                                      "finish_reason": "length"}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 100,
                                   "total_tokens": 103}})
    events = replay_sse(body, request_id="abc", include_usage=True)
    parsed = parse_sse(events)
    assert parsed[-1] == "[DONE]"
    assert parsed[-2]["usage"]["completion_tokens"] == 100
    assert parsed[-2]["choices"] == []
    assert all(p["id"] == "chatcmpl-abc" for p in parsed[:-1])
    assert all(p["object"] == "chat.completion.chunk" for p in parsed[:-1])
    assert len(parsed) > 4  # content arrives in several pieces
    again = assemble_sse(events)
    assert again is not None
    assert orjson.loads(again)["choices"][0]["message"]["content"] == long_text
    assert orjson.loads(again)["choices"][0]["finish_reason"] == "length"


def test_replay_sse_without_usage_and_json_replay() -> None:
    body = assemble_sse(COMPLETE)
    assert body is not None
    parsed = parse_sse(replay_sse(body))
    assert not any(isinstance(p, dict) and "usage" in p for p in parsed)
    as_json = orjson.loads(replay_json(body, request_id="r1"))
    assert as_json["id"] == "chatcmpl-r1"
    assert as_json["choices"][0]["message"]["content"] == "Hello, world"


def test_completions_stream_round_trip() -> None:
    def text_chunk(text: str, finish: str | None = None) -> bytes:
        return b"data: " + orjson.dumps({"id": "cmpl-1", "object": "text_completion",
                                         "model": "m1", "choices": [{
                                             "index": 0, "text": text,
                                             "finish_reason": finish}]}) + b"\n\n"
    body = assemble_sse([text_chunk("Once"), text_chunk(" upon", "stop"), b"data: [DONE]\n\n"])
    assert body is not None
    assert orjson.loads(body)["choices"][0]["text"] == "Once upon"
    parsed = parse_sse(replay_sse(body))
    assert "".join(p["choices"][0]["text"] for p in parsed[:-1]) == "Once upon"


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (b'{"choices":[{"index":0,"message":{"content":"hi"},"finish_reason":"stop"}]}', True),
        (b'{"choices":[{"index":0,"message":{"content":"hi"},"finish_reason":null}]}', False),
        (b'{"error":{"message":"boom"}}', False),
        (b'{"choices":[]}', False),
        (b"not json", False),
        (b'{"choices":[{"index":0,"message":{"tool_calls":[{}]},"finish_reason":"stop"}]}',
         False),
    ],
)
def test_cacheable_body(body: bytes, ok: bool) -> None:
    assert cacheable_body(body) is ok
