"""StreamUsage: reported usage wins; a missing usage chunk is filled in before [DONE]."""

from __future__ import annotations

import orjson

from switchyard.protocol import StreamUsage
from switchyard.types import Usage


def event(payload: dict[str, object]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


DELTA = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
         "choices": [{"index": 0, "delta": {"content": "x"}}]}


def test_usage_is_inserted_before_done_when_upstream_sent_none() -> None:
    tracker = StreamUsage(prompt_tokens=7, inject=True)
    out = tracker.feed(event(DELTA) + event(DELTA))
    out += tracker.feed(event(DELTA) + b"data: [DONE]\n\n")
    events = [e for e in out.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    usage_chunk = orjson.loads(events[-2][6:])
    assert usage_chunk["choices"] == [] and usage_chunk["id"] == "c1"
    assert usage_chunk["usage"] == {"prompt_tokens": 7, "completion_tokens": 2,
                                    "total_tokens": 9}
    assert tracker.done


def test_reported_usage_is_passed_through_untouched() -> None:
    tracker = StreamUsage(prompt_tokens=7, inject=True)
    reported = event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}})
    raw = event(DELTA) + reported + b"data: [DONE]\n\n"
    assert tracker.feed(raw) == raw
    assert tracker.usage() == Usage(3, 5)


def test_nothing_is_inserted_unless_the_client_asked() -> None:
    tracker = StreamUsage(prompt_tokens=7, inject=False)
    raw = event(DELTA) + b"data: [DONE]\n\n"
    assert tracker.feed(raw) == raw
    assert tracker.usage() == Usage(7, 0)
