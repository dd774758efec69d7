"""The official `openai` SDK against a real `switchyard serve` process in front of fake
OpenAI backends that run as their own HTTP server processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from tests.fakes import payloads
from tests.fakes.harness import FAST_POOL, free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CONTENT = "Hello from the fake backend."
MESSAGES: list[Any] = [{"role": "user", "content": "hello there"}]


@dataclass
class Stack:
    url: str
    fakes: dict[str, str]
    records: Path

    def sdk(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key="sk-test", max_retries=0,
                             timeout=10.0)

    def async_sdk(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key="sk-test", max_retries=0,
                                  timeout=10.0)

    def fake_requests(self, name: str) -> list[dict[str, Any]]:
        answer = httpx.get(self.fakes[name].removesuffix("/v1") + "/_fake/requests").json()
        return [r for r in answer["requests"] if r["method"] == "POST"]

    def set_fake(self, name: str, **behaviour: Any) -> None:
        httpx.post(self.fakes[name].removesuffix("/v1") + "/_fake/behaviour", json=behaviour)


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready in {timeout_s} s")


def _config(fakes: dict[str, str], records: Path) -> dict[str, Any]:
    def pool(name: str, endpoints: list[str]) -> dict[str, Any]:
        return {**FAST_POOL, "name": name,
                "endpoints": [{"name": e, "url": fakes[e]} for e in endpoints]}

    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "models": [
            {"name": "m1", "pool": "p1", "input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0},
            {"name": "m2", "pool": "p2"},
        ],
        "pools": [pool("p1", ["a", "b"]), pool("p2", ["c"])],
        "routing": {
            "signals": [{"name": "code", "type": "keyword", "keywords": ["python"]},
                        {"name": "bad", "type": "keyword", "keywords": ["forbidden"]}],
            "decisions": [
                {"name": "coding", "priority": 10, "when": {"signal": "code"}, "model": "m2"},
                {"name": "blocked", "priority": 99, "when": {"signal": "bad"},
                 "action": "block", "message": "that topic is blocked"},
            ],
            "default": "m1",
        },
        "records": {"path": str(records)},
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        fakes: dict[str, str] = {}
        for name in ("a", "b", "c"):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.fakes.server", "--port", str(port), "--name", name,
                 "--models", "m1,m2"], cwd=REPO, env=env)
            processes.append(process)
            fakes[name] = f"http://127.0.0.1:{port}/v1"
            _wait_http(fakes[name] + "/models", process)
        records = workdir / "routes.jsonl"
        config_file = workdir / "switchyard.yaml"
        config_file.write_text(yaml.safe_dump(_config(fakes, records)))
        port = free_port()
        gateway = subprocess.Popen(
            [sys.executable, "-m", "switchyard.cli", "serve", "--config", str(config_file),
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=workdir, env=env)
        processes.append(gateway)
        url = f"http://127.0.0.1:{port}"
        _wait_http(url + "/readyz", gateway)
        yield Stack(url, fakes, records)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _streamed_text(count: int = 5) -> str:
    return "".join(payloads.stream_piece(CONTENT, i) for i in range(count))


def test_sync_chat(stack: Stack) -> None:
    raw = stack.sdk().chat.completions.with_raw_response.create(model="m1", messages=MESSAGES)
    completion = raw.parse()

    assert completion.choices[0].message.content == CONTENT
    assert completion.usage is not None and completion.usage.total_tokens == 18
    assert raw.headers["x-switchyard-model"] == "m1"
    assert raw.headers["x-switchyard-endpoint"].rsplit("/", 1)[-1] in ("a", "b")
    assert raw.headers["x-switchyard-request-id"]


def test_sync_chat_stream_with_usage(stack: Stack) -> None:
    stream = stack.sdk().chat.completions.create(
        model="m1", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == _streamed_text()
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7


async def test_async_chat(stack: Stack) -> None:
    async with stack.async_sdk() as client:
        completion = await client.chat.completions.create(model="auto", messages=MESSAGES)
    assert completion.choices[0].message.content == CONTENT


async def test_async_chat_stream_routed_by_rules(stack: Stack) -> None:
    async with stack.async_sdk() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", stream=True,
            messages=[{"role": "user", "content": "write python, please"}])
        assert raw.headers["x-switchyard-decision"] == "coding"
        assert raw.headers["x-switchyard-model"] == "m2"
        pieces = [c.choices[0].delta.content or "" async for c in raw.parse() if c.choices]
    assert "".join(pieces) == _streamed_text()


def test_legacy_completions(stack: Stack) -> None:
    completion = stack.sdk().completions.create(model="m1", prompt="once upon a time")
    assert completion.choices[0].text == CONTENT


def test_models_list(stack: Stack) -> None:
    ids = {m.id for m in stack.sdk().models.list()}
    assert ids == {"m1", "m2", "auto", "coding", "blocked"}


def test_tools_and_extra_fields_reach_the_backend(stack: Stack) -> None:
    tools: list[Any] = [{"type": "function", "function": {
        "name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    stack.sdk().chat.completions.create(
        model="m2", messages=MESSAGES, tools=tools, tool_choice="auto", seed=7,
        extra_body={"x_trace": {"id": "t-123"}})

    last = json.loads(stack.fake_requests("c")[-1]["body"])
    assert last["tools"] == tools
    assert last["tool_choice"] == "auto" and last["seed"] == 7
    assert last["x_trace"] == {"id": "t-123"}


def test_errors_map_to_sdk_exceptions(stack: Stack) -> None:
    client = stack.sdk()
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="gpt-imaginary", messages=MESSAGES)
    assert "m1" in str(not_found.value)
    with pytest.raises(openai.BadRequestError) as blocked:
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "something forbidden"}])
    assert "that topic is blocked" in str(blocked.value)


async def test_mid_stream_failure_raises_in_the_sdk(stack: Stack) -> None:
    stack.set_fake("c", mode="drop", drop_after=3, chunks=10)
    try:
        async with stack.async_sdk() as client:
            stream = await client.chat.completions.create(model="m2", messages=MESSAGES,
                                                          stream=True)
            received: list[str] = []
            with pytest.raises(openai.APIError):
                async for chunk in stream:
                    received.append(chunk.choices[0].delta.content or "")
        assert "".join(received) == _streamed_text(2)
    finally:
        stack.set_fake("c", mode="fixed")


def test_records_written_without_prompts(stack: Stack) -> None:
    stack.sdk().chat.completions.create(model="m1", messages=[
        {"role": "user", "content": "a private sentence"}])

    def records() -> list[dict[str, Any]]:
        if not stack.records.exists():
            return []
        lines = stack.records.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    deadline = time.monotonic() + 5
    while not records() and time.monotonic() < deadline:
        time.sleep(0.1)
    found = records()
    assert found, "no RouteRecord was written within 5 s"
    assert all(r["prompt"] is None for r in found)
    assert "a private sentence" not in stack.records.read_text()
