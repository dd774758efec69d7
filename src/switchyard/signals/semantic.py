"""The one embedding resource all semantic signals of a configuration share.

`shared_embeddings(context)` returns the same `SharedEmbeddings` to every signal built with that
`SignalContext`: one MiniLM model, one micro-batcher, and a small per-request cache so that the
last user message of a request is embedded once however many signals look at it (concurrent
signals await the same in-flight embedding).

The model loads in a background thread as soon as the first semantic signal is built, so start-up
never blocks the event loop; work that needs the model (embedding route examples, say) is queued
on the same loader thread with `submit()`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np

from switchyard.embed.base import Vectors
from switchyard.embed.batcher import BatchingEmbedder
from switchyard.embed.minilm import MiniLMEmbedder
from switchyard.embed.minilm_graph import Precision
from switchyard.signals.base import SignalContext

T = TypeVar("T")

SHARED_KEY = "switchyard.semantic.embeddings"
REQUEST_CACHE_SIZE = 512
# Signals read the first 128 tokens of a message: enough to classify it, and half the cost of
# 256 on long prompts. Training embeds its corpora with the same limit (see signals.training).
SIGNAL_MAX_TOKENS = 128
# A batch starts as soon as the model thread is free; calls that arrive while it runs form the
# next batch. Holding a lone call open for company only adds latency: a single request then
# pays the wait, and under load the queue fills while the previous batch runs anyway.
DEFAULT_MAX_WAIT_US = 0
# Signals run MiniLM with int8 matrix products (about half the CPU of fp32; embeddings at cosine
# ~0.99 to fp32, see docs/signals.md "Performance" for the measured effect on the trained heads).
# "fp32" gives the exported model's numbers exactly (the heads were trained on those).
SIGNAL_PRECISION: Precision = "int8"


class SharedEmbeddings:
    """MiniLM + micro-batcher + per-request embedding cache (bounded, owned here)."""

    def __init__(
        self,
        max_batch: int = 32,
        max_wait_us: int = DEFAULT_MAX_WAIT_US,
        threads: int | None = None,
        max_length: int = SIGNAL_MAX_TOKENS,
        batching: bool = True,
        model: MiniLMEmbedder | None = None,
        precision: Precision = SIGNAL_PRECISION,
    ) -> None:
        self.max_batch = max_batch if batching else 1
        self.max_wait_us = max_wait_us if batching else 0
        self._loader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model-loader")
        if model is not None:  # preloaded (tests, benchmarks): share it
            self._model: concurrent.futures.Future[MiniLMEmbedder] = concurrent.futures.Future()
            self._model.set_result(model)
        else:
            self._model = self._loader.submit(MiniLMEmbedder, max_length, threads, precision)
        self._batcher: BatchingEmbedder | None = None
        self._per_request: OrderedDict[tuple[str, str], asyncio.Future[Vectors]] = OrderedDict()
        self._fills: set[asyncio.Task[None]] = set()
        self.dim = 384

    def submit(self, work: Callable[[MiniLMEmbedder], T]) -> concurrent.futures.Future[T]:
        """Run `work(model)` on the loader thread once the model is loaded (start-up work)."""
        return self._loader.submit(lambda: work(self._model.result()))

    def model(self) -> MiniLMEmbedder:
        """The loaded model (blocks until loaded: for offline use, not on the event loop)."""
        return self._model.result()

    async def ready(self) -> MiniLMEmbedder:
        return await asyncio.wrap_future(self._model)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed through the micro-batcher (no caching)."""
        if self._batcher is None:
            model = await self.ready()
            if self._batcher is None:
                self._batcher = BatchingEmbedder(model, self.max_batch, self.max_wait_us)
        return await self._batcher.embed(texts)

    async def embed_for_request(self, request_id: str, texts: Sequence[str]) -> Vectors:
        """Embed texts of one request; a text already embedded for this request is reused."""
        futures: list[asyncio.Future[Vectors]] = []
        missing: list[str] = []
        owned: list[asyncio.Future[Vectors]] = []
        loop = asyncio.get_running_loop()
        for text in texts:
            key = (request_id, text)
            future = self._per_request.get(key)
            if future is None or _failed(future):
                future = loop.create_future()
                self._remember(key, future)
                missing.append(text)
                owned.append(future)
            futures.append(future)
        if missing:  # computed in its own task: a caller that times out cancels only itself
            task = asyncio.ensure_future(self._fill(missing, owned))
            self._fills.add(task)
            task.add_done_callback(self._fills.discard)
        rows = [await asyncio.shield(future) for future in futures]
        return np.stack(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)

    async def _fill(self, texts: list[str], futures: list[asyncio.Future[Vectors]]) -> None:
        try:
            vectors = await self.embed(texts)
        except asyncio.CancelledError:  # only on shutdown
            for future in futures:
                future.cancel()
            raise
        except Exception as error:  # every request waiting on these texts gets the error
            for future in futures:
                if not future.done():
                    future.set_exception(error)
                    future.exception()  # retrieved here; the awaiting callers re-raise it
            return
        for future, row in zip(futures, vectors, strict=True):
            if not future.done():
                future.set_result(row)

    def _remember(self, key: tuple[str, str], future: asyncio.Future[Vectors]) -> None:
        self._per_request[key] = future
        self._per_request.move_to_end(key)
        while len(self._per_request) > REQUEST_CACHE_SIZE:
            self._per_request.popitem(last=False)

    async def aclose(self) -> None:
        for task in list(self._fills):
            task.cancel()
        if self._batcher is not None:
            await self._batcher.aclose()
        self._per_request.clear()
        self._loader.shutdown(wait=False, cancel_futures=True)


async def resolved(future: concurrent.futures.Future[T]) -> T:
    """The value of a start-up future, awaited without blocking the loop if not ready yet."""
    if future.done():
        return future.result()
    return await asyncio.wrap_future(future)


def request_text(text: str) -> str:
    """The canonical form of a message that semantic signals embed (shared per request)."""
    return text.strip()


def _failed(future: asyncio.Future[Vectors]) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)


def shared_embeddings(context: SignalContext) -> SharedEmbeddings:
    """The configuration's one `SharedEmbeddings` (created, and its model load started, once)."""
    return context.shared(SHARED_KEY, SharedEmbeddings)


async def wait_until_ready(signals: Iterable[object]) -> None:
    """Await `ready()` of every signal that has one (models loaded, examples embedded).

    For the gateway's start-up / readiness probe; evaluation works before this too (the first
    requests then wait for the models).
    """
    for signal in signals:
        ready = getattr(signal, "ready", None)
        if ready is not None:
            await ready()
