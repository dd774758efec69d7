"""The async micro-batcher: grouping, result mapping under concurrency, errors, closing."""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections.abc import Sequence

import numpy as np
import pytest

from switchyard.embed.base import Vectors
from switchyard.embed.batcher import BatchingEmbedder, EmbedderClosedError
from switchyard.embed.minilm import MiniLMEmbedder


class RecordingEmbedder:
    """Deterministic vectors derived from each text; records batch sizes and the thread used."""

    dim = 4

    def __init__(self, fail_on: str | None = None, delay_s: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[int] = set()
        self.fail_on = fail_on
        self.delay_s = delay_s

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        self.batches.append(list(texts))
        self.threads.add(threading.get_ident())
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_on is not None and self.fail_on in texts:
            raise ValueError("model exploded")
        return np.array([_fingerprint(text) for text in texts], dtype=np.float32)


def _fingerprint(text: str) -> list[float]:
    crc = zlib.crc32(text.encode())
    return [float(crc % 1000), float(len(text)), float(crc % 7), 1.0]


async def test_concurrent_calls_are_batched_and_get_their_own_rows() -> None:
    inner = RecordingEmbedder(delay_s=0.01)
    batcher = BatchingEmbedder(inner, max_batch=16, max_wait_us=5000)
    requests = [[f"request {i} text {j}" for j in range(i % 3 + 1)] for i in range(40)]
    results = await asyncio.gather(*(batcher.embed(texts) for texts in requests))
    await batcher.aclose()
    for texts, vectors in zip(requests, results, strict=True):
        assert vectors.shape == (len(texts), 4)
        np.testing.assert_array_equal(vectors, [_fingerprint(t) for t in texts])
    assert len(inner.batches) < len(requests) / 3
    assert all(len(batch) <= 16 for batch in inner.batches)
    assert threading.get_ident() not in inner.threads  # the loop thread never runs the model


async def test_a_lone_call_is_flushed_after_max_wait() -> None:
    inner = RecordingEmbedder()
    batcher = BatchingEmbedder(inner, max_batch=32, max_wait_us=20_000)
    started = time.perf_counter()
    vectors = await batcher.embed(["alone"])
    waited = time.perf_counter() - started
    await batcher.aclose()
    np.testing.assert_array_equal(vectors, [_fingerprint("alone")])
    assert 0.015 <= waited < 0.5


async def test_a_full_batch_does_not_wait_for_the_deadline() -> None:
    inner = RecordingEmbedder()
    batcher = BatchingEmbedder(inner, max_batch=4, max_wait_us=2_000_000)
    started = time.perf_counter()
    await asyncio.gather(*(batcher.embed([f"t{i}"]) for i in range(4)))
    assert time.perf_counter() - started < 1.0
    await batcher.aclose()
    assert inner.batches == [["t0", "t1", "t2", "t3"]]


async def test_an_oversized_call_runs_alone() -> None:
    inner = RecordingEmbedder()
    batcher = BatchingEmbedder(inner, max_batch=2, max_wait_us=0)
    big = [f"t{i}" for i in range(5)]
    vectors = await batcher.embed(big)
    await batcher.aclose()
    assert vectors.shape == (5, 4)
    assert inner.batches == [big]


async def test_an_error_reaches_every_caller_of_that_batch_only() -> None:
    inner = RecordingEmbedder(fail_on="poison")
    batcher = BatchingEmbedder(inner, max_batch=8, max_wait_us=50_000)
    outcomes = await asyncio.gather(
        batcher.embed(["fine 1"]),
        batcher.embed(["poison"]),
        batcher.embed(["fine 2"]),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, ValueError) for outcome in outcomes)
    after = await batcher.embed(["later"])  # the worker survived the failure
    np.testing.assert_array_equal(after, [_fingerprint("later")])
    await batcher.aclose()


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    inner = RecordingEmbedder()
    batcher = BatchingEmbedder(inner, max_batch=8, max_wait_us=30_000)
    doomed = asyncio.ensure_future(batcher.embed(["doomed"]))
    kept = asyncio.ensure_future(batcher.embed(["kept"]))
    await asyncio.sleep(0)
    doomed.cancel()
    np.testing.assert_array_equal(await kept, [_fingerprint("kept")])
    await batcher.aclose()
    assert inner.batches == [["kept"]]


async def test_close_finishes_queued_calls_then_refuses_new_ones() -> None:
    inner = RecordingEmbedder()
    batcher = BatchingEmbedder(inner, max_batch=8, max_wait_us=1_000_000)
    queued = asyncio.ensure_future(batcher.embed(["queued"]))
    await asyncio.sleep(0)
    await batcher.aclose()
    np.testing.assert_array_equal(await queued, [_fingerprint("queued")])
    with pytest.raises(EmbedderClosedError):
        await batcher.embed(["too late"])


async def test_real_model_results_map_back_under_concurrency() -> None:
    model = MiniLMEmbedder(max_length=64, threads=1)
    batcher = BatchingEmbedder(model, max_batch=8, max_wait_us=3000)
    texts = [f"question number {i}: what is {i} plus {i}?" for i in range(24)]
    results = await asyncio.gather(*(batcher.embed([text]) for text in texts))
    await batcher.aclose()
    expected = model.embed_batch(texts)
    got = np.concatenate(results)
    np.testing.assert_allclose((got * expected).sum(axis=1), 1.0, atol=1e-4)
    assert batcher.batches_run < len(texts)
