"""Async micro-batching in front of a synchronous batched embedder.

Concurrent `embed()` calls are queued; one worker task takes queued calls until `max_batch` texts
are collected or the oldest call has waited `max_wait_us`, runs ONE `embed_batch` in a worker
thread, and hands each caller its own rows. Calls that queue while a batch is running are flushed
as soon as it finishes (their wait already started). An inference error is raised in every caller
of that batch; it never stops the worker. The event loop never runs model code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from switchyard.embed.base import Vectors


class BatchEmbedder(Protocol):
    dim: int

    def embed_batch(self, texts: Sequence[str]) -> Vectors: ...


class EmbedderClosedError(RuntimeError):
    """embed() was called after aclose()."""


@dataclass(slots=True)
class _PendingCall:
    texts: list[str]
    future: asyncio.Future[Vectors]
    enqueued_at: float


class BatchingEmbedder:
    """Micro-batcher; satisfies the `Embedder` protocol. Create and use it inside one event loop."""

    def __init__(self, inner: BatchEmbedder, max_batch: int = 32, max_wait_us: int = 2000) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if max_wait_us < 0:
            raise ValueError("max_wait_us must be >= 0")
        self.inner = inner
        self.dim = inner.dim
        self.max_batch = max_batch
        self.max_wait_s = max_wait_us / 1e6
        self._pending: deque[_PendingCall] = deque()
        self._pending_texts = 0
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.batches_run = 0  # observable for tests and benchmarks

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if self._closed:
            raise EmbedderClosedError("the embedder is closed")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or reused under a new event loop
            self._loop = loop
            self._wakeup = asyncio.Event()
            self._worker = None
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run_worker(), name="embedding-batcher")
        call = _PendingCall(list(texts), loop.create_future(), loop.time())
        self._pending.append(call)
        self._pending_texts += len(call.texts)
        self._wakeup.set()
        return await call.future

    async def aclose(self) -> None:
        """Finish queued calls, then stop the worker. Later `embed()` calls raise."""
        self._closed = True
        self._wakeup.set()
        if self._worker is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _run_worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._wait_for_batch(loop)
            batch = self._take_batch()
            if batch:
                await self._run_batch(batch)

    async def _wait_for_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until a full batch is queued, the oldest call's deadline passes, or close."""
        deadline = self._pending[0].enqueued_at + self.max_wait_s
        while self._pending_texts < self.max_batch and not self._closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    def _take_batch(self) -> list[_PendingCall]:
        batch: list[_PendingCall] = []
        size = 0
        while self._pending:
            call = self._pending[0]
            if batch and size + len(call.texts) > self.max_batch:
                break
            self._pending.popleft()
            self._pending_texts -= len(call.texts)
            if not call.future.done():  # skip callers that were cancelled while queued
                batch.append(call)
                size += len(call.texts)
        return batch

    async def _run_batch(self, batch: list[_PendingCall]) -> None:
        texts = [text for call in batch for text in call.texts]
        self.batches_run += 1
        try:
            vectors = await asyncio.to_thread(self.inner.embed_batch, texts)
            if vectors.shape[0] != len(texts):
                raise RuntimeError(f"embedder returned {vectors.shape[0]} rows for {len(texts)}")
        except asyncio.CancelledError:
            self._fail(batch, EmbedderClosedError("the embedder was stopped mid-batch"))
            raise
        except Exception as error:  # every caller of the batch gets the error
            self._fail(batch, error)
            return
        start = 0
        for call in batch:
            end = start + len(call.texts)
            if not call.future.done():
                call.future.set_result(vectors[start:end])
            start = end

    @staticmethod
    def _fail(batch: list[_PendingCall], error: BaseException) -> None:
        for call in batch:
            if not call.future.done():
                call.future.set_exception(error)
