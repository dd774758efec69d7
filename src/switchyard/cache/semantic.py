"""`ResponseCache`: the Cache the gateway calls. Exact and/or semantic lookup over a store.

lookup: policy + eligibility → key → exact match → embed the last user message → top-k
nearest in the same partition (tenant scope, model, system prompt, parameters) → drop those
below the cosine floor → the hit verifier scores the rest → best score at or above the
threshold (the stricter of the configured one and the one recorded with the entry) is a hit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from switchyard.cache.base import (
    CacheBackendError,
    CacheEntry,
    CacheKey,
    CacheScope,
    CacheStats,
    CacheStore,
    Candidate,
    LookupResult,
    StoreQuery,
    Vector,
)
from switchyard.cache.key import ineligibility, make_key
from switchyard.cache.policy import CachePolicy, EffectivePolicy
from switchyard.cache.replay import cacheable_body
from switchyard.cache.verifier import HitVerifier
from switchyard.config.cache import CacheConfig
from switchyard.embed.base import Embedder
from switchyard.types import RequestView

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Counters:
    lookups: int = 0
    hits: int = 0
    exact_hits: int = 0
    semantic_hits: int = 0
    misses: int = 0
    bypasses: int = 0
    stores: int = 0
    store_skips: int = 0
    backend_errors: int = 0


class ResponseCache:
    """Implements `Cache`. `embedder` may be None only in `exact` mode."""

    def __init__(self, cfg: CacheConfig, store: CacheStore, embedder: Embedder | None,
                 verifier: HitVerifier | None, clock: Callable[[], float] = time.time) -> None:
        if cfg.mode != "exact" and embedder is None:
            raise ValueError("semantic cache modes need an embedder")
        self.config = cfg
        self._store = store
        self._embedder = embedder
        self._verifier = verifier
        self._policy = CachePolicy(cfg)
        self._semantic = cfg.mode != "exact"
        self._exact = cfg.mode != "semantic"
        self.counters = _Counters()
        self._clock = clock

    def _bypass(self, reason: str, started: float, key: CacheKey | None = None) -> LookupResult:
        self.counters.bypasses += 1
        return LookupResult("bypass", reason=reason, key=key,
                            latency_ms=(time.perf_counter() - started) * 1e3)

    async def lookup(self, view: RequestView, scope: CacheScope) -> LookupResult:
        started = time.perf_counter()
        self.counters.lookups += 1
        policy = self._policy.resolve(scope)
        if not policy.enabled:
            return self._bypass(policy.reason or "disabled", started)
        reason = ineligibility(view, scope.body, self.config)
        if reason is not None:
            return self._bypass(reason, started)
        key = make_key(view, scope.body, self.config, scope.tenant)
        now = self._clock()
        vector: Vector | None = None
        try:
            if self._exact:
                found = await self._store.find(StoreQuery(
                    tenant=key.tenant, partition=key.partition, now=now, exact_key=key.exact))
                if found:
                    return self._hit(found[0], 1.0, started, key)
            if self._semantic and policy.semantic and self._embedder is not None:
                vector = await self._embed(view, key.query_text)
                found = await self._store.find(StoreQuery(
                    tenant=key.tenant, partition=key.partition, now=now, vector=vector,
                    k=self.config.top_k))
                best = self._verify(key, vector, found, policy)
                if best is not None:
                    return self._hit(best[0], best[1], started, key, vector)
        except CacheBackendError as exc:
            self.counters.backend_errors += 1
            logger.warning("cache backend unavailable, bypassing: %s", exc)
            return self._bypass("backend_unavailable", started, key)
        except Exception:  # the cache must never fail a request
            logger.exception("cache lookup failed, bypassing")
            return self._bypass("cache_error", started, key)
        self.counters.misses += 1
        return LookupResult("miss", key=key, vector=vector,
                            latency_ms=(time.perf_counter() - started) * 1e3)

    async def _embed(self, view: RequestView, text: str) -> Vector:
        """One vector; shared with semantic signals when the embedder caches per request."""
        assert self._embedder is not None
        per_request = getattr(self._embedder, "embed_for_request", None)
        if per_request is not None:
            vectors = await per_request(view.request_id, [text])
        else:
            vectors = await self._embedder.embed([text])
        vector: Vector = vectors[0]
        return vector

    def _verify(self, key: CacheKey, vector: Vector, found: Sequence[Candidate],
                policy: EffectivePolicy) -> tuple[Candidate, float] | None:
        candidates = [c for c in found if c.entry.semantic and c.similarity >= max(
            policy.min_similarity, c.entry.min_similarity)]
        if not candidates:
            return None
        if self._verifier is None:
            scores = np.asarray([c.similarity for c in candidates], dtype=np.float32)
        else:
            vectors = np.stack([c.entry.vector for c in candidates if c.entry.vector is not None])
            scores = self._verifier.score(key.query_text, vector,
                                          [c.entry.query_text for c in candidates], vectors)
        best: tuple[Candidate, float] | None = None
        for candidate, score in zip(candidates, scores.tolist(), strict=True):
            needed = max(policy.threshold, candidate.entry.min_score)
            if score >= needed and (best is None or score > best[1]):
                best = (candidate, float(score))
        return best

    def _hit(self, candidate: Candidate, score: float, started: float, key: CacheKey,
             vector: Vector | None = None) -> LookupResult:
        self.counters.hits += 1
        if candidate.exact:
            self.counters.exact_hits += 1
        else:
            self.counters.semantic_hits += 1
        touch = getattr(self._store, "touch", None)
        if touch is not None and not candidate.exact:
            touch(candidate.entry.entry_id)
        return LookupResult(
            "hit", response=candidate.entry.response,
            match="exact" if candidate.exact else "semantic",
            similarity=candidate.similarity, score=score, category=candidate.entry.category,
            key=key, vector=vector, latency_ms=(time.perf_counter() - started) * 1e3)

    async def store(self, view: RequestView, scope: CacheScope, body: bytes,
                    lookup: LookupResult | None = None) -> bool:
        """Store a complete JSON completion body; False when policy or content says no."""
        policy = self._policy.resolve(scope)
        if (not policy.enabled or ineligibility(view, scope.body, self.config) is not None
                or len(body) > self.config.max_response_bytes or not cacheable_body(body)):
            self.counters.store_skips += 1
            return False
        key = lookup.key if lookup is not None and lookup.key is not None else make_key(
            view, scope.body, self.config, scope.tenant)
        vector = lookup.vector if lookup is not None else None
        try:
            if self._semantic and policy.semantic and vector is None:
                vector = await self._embed(view, key.query_text)
            now = self._clock()
            await self._store.put(CacheEntry(
                tenant=key.tenant, partition=key.partition, exact_key=key.exact,
                query_text=key.query_text, vector=vector, response=body,
                category=policy.category, min_score=policy.threshold,
                min_similarity=policy.min_similarity,
                semantic=self._semantic and policy.semantic and vector is not None,
                created_at=now, expires_at=now + policy.ttl_s))
        except CacheBackendError as exc:
            self.counters.backend_errors += 1
            logger.warning("cache backend unavailable, response not stored: %s", exc)
            return False
        except Exception:  # never let a store failure surface
            logger.exception("cache store failed")
            return False
        self.counters.stores += 1
        return True

    async def stats(self) -> CacheStats:
        try:
            store_stats = await self._store.stats()
        except CacheBackendError:
            self.counters.backend_errors += 1
            store_stats = None
        c = self.counters
        return CacheStats(
            lookups=c.lookups, hits=c.hits, exact_hits=c.exact_hits,
            semantic_hits=c.semantic_hits, misses=c.misses, bypasses=c.bypasses,
            stores=c.stores, store_skips=c.store_skips, backend_errors=c.backend_errors,
            store=store_stats)

    async def clear(self, tenant: str | None = None) -> int:
        return await self._store.clear(tenant)

    async def aclose(self) -> None:
        await self._store.aclose()
