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
import logging
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
log = logging.getLogger(__name__)

SHARED_KEY = "switchyard.semantic.embeddings"
REQUEST_CACHE_SIZE = 512
# Classification signals (domain, complexity, jailbreak, embedding routes) read the first 64
# tokens of a message, and their heads are trained on embeddings with the same limit (see
# signals.training; the window is stored in each head's meta). 64 instead of 128 halves the
# embedding cost of long prompts (the p99 and throughput at load) for ~1 point of domain
# accuracy and ~0.3 point of jailbreak AUC; docs/signals.md "Signal window" has the numbers.
SIGNAL_MAX_TOKENS = 64
# The semantic cache key embeds the first 128 tokens (a cache key that stops at 64 tokens would
# let long prompts with a common start collide more often). Learned routers embed what their
# artifact was trained on (`routing.learned.embedding_of`).
KEY_MAX_TOKENS = 128
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
        narrower: Callable[[], SharedEmbeddings | None] | None = None,
    ) -> None:
        # `narrower`: the same model with a shorter window; a text that fits in it has the same
        # vector in both, so it is embedded there once per request (and shared with its users).
        self._narrower = narrower
        self.precision: Precision = (
            ("int8" if getattr(model, "graph", "") == "fused-int8" else "fp32")
            if model is not None
            else precision
        )
        self.max_batch = max_batch if batching else 1
        self.max_wait_us = max_wait_us if batching else 0
        self._loader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model-loader")
        if model is not None:  # preloaded (tests, benchmarks): share it
            self._model: concurrent.futures.Future[MiniLMEmbedder] = concurrent.futures.Future()
            self._model.set_result(model)
        else:
            self._model = self._loader.submit(MiniLMEmbedder, max_length, threads, precision)
        self.max_length = int(getattr(model, "max_length", max_length))
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
            task = asyncio.ensure_future(self._fill(request_id, missing, owned))
            self._fills.add(task)
            task.add_done_callback(self._fills.discard)
        rows = [await asyncio.shield(future) for future in futures]
        return np.stack(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)

    async def _fill(
        self, request_id: str, texts: list[str], futures: list[asyncio.Future[Vectors]]
    ) -> None:
        try:
            vectors = await self._embed_reusing(request_id, texts)
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

    async def _embed_reusing(self, request_id: str, texts: list[str]) -> Vectors:
        narrower = self._narrower() if self._narrower is not None else None
        if narrower is None:
            return await self.embed(texts)
        model = await self.ready()
        fits = np.array([_fits(model, text, narrower.max_length) for text in texts])
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        if fits.any():
            short = [text for text, fit in zip(texts, fits, strict=True) if fit]
            vectors[fits] = await narrower.embed_for_request(request_id, short)
        if not fits.all():
            longer = [text for text, fit in zip(texts, fits, strict=True) if not fit]
            vectors[~fits] = await self.embed(longer)
        return vectors

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


# Above this many characters a text is taken not to fit a narrower window without tokenizing it
# (the event loop never tokenizes a long prompt; at worst its vector is computed twice).
_FIT_CHECK_MAX_CHARS = 1024


def _fits(model: MiniLMEmbedder, text: str, max_tokens: int) -> bool:
    """Whether `text` is whole within `max_tokens` tokens (special tokens included)."""
    if text.isascii() and len(text) + 2 <= max_tokens:  # an ASCII token has >= 1 character
        return True
    return len(text) <= _FIT_CHECK_MAX_CHARS and model.token_count(text) <= max_tokens


def _failed(future: asyncio.Future[Vectors]) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)


def shared_embeddings(
    context: SignalContext,
    max_length: int = SIGNAL_MAX_TOKENS,
    precision: Precision = SIGNAL_PRECISION,
) -> SharedEmbeddings:
    """The configuration's one `SharedEmbeddings` for a token window and precision (created, and
    its model load started, once): classification signals share the `SIGNAL_MAX_TOKENS` one, the
    cache the `KEY_MAX_TOKENS` one, a learned router the one its artifact was trained with."""
    key = shared_key(max_length, precision)
    if key == SHARED_KEY:
        return context.shared(SHARED_KEY, SharedEmbeddings)

    def narrower() -> SharedEmbeddings | None:  # only if some signal already loaded it
        found = context.resources.get(SHARED_KEY)
        if not isinstance(found, SharedEmbeddings):
            return None
        return found if found.precision == precision and found.max_length < max_length else None

    return context.shared(
        key,
        lambda: SharedEmbeddings(max_length=max_length, precision=precision, narrower=narrower),
    )


def shared_key(max_length: int = SIGNAL_MAX_TOKENS, precision: Precision = SIGNAL_PRECISION) -> str:
    """The `SignalContext` resource key of the `SharedEmbeddings` for a token window and precision
    (tests and benchmarks put a preloaded one there)."""
    if (max_length, precision) == (SIGNAL_MAX_TOKENS, SIGNAL_PRECISION):
        return SHARED_KEY
    if precision == SIGNAL_PRECISION:
        return f"{SHARED_KEY}.{max_length}"
    return f"{SHARED_KEY}.{max_length}.{precision}"


def check_window(head_meta: dict[str, object], embeddings: SharedEmbeddings, what: str) -> None:
    """Warn when a head was trained on a different token window than it is served with."""
    trained = head_meta.get("max_tokens")
    if isinstance(trained, int | float) and int(trained) != embeddings.max_length:
        log.warning(
            "%s was trained on %d-token embeddings but is served %d-token ones; "
            "retrain it with `switchyard train-signal`", what, int(trained), embeddings.max_length
        )


async def wait_until_ready(signals: Iterable[object]) -> None:
    """Await `ready()` of every signal that has one (models loaded, examples embedded).

    For the gateway's start-up / readiness probe; evaluation works before this too (the first
    requests then wait for the models).
    """
    for signal in signals:
        ready = getattr(signal, "ready", None)
        if ready is not None:
            await ready()
