"""The embedded cache (memory only, no file): hits, tenant isolation, TTL, eviction bounds."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.fakes.cache_embedder import HashingEmbedder

from switchyard.cache.base import CacheScope
from switchyard.cache.memory import MemoryStore
from switchyard.cache.semantic import ResponseCache
from switchyard.config.cache import CacheCategoryRule, CacheConfig, EmbeddedCacheBackendConfig
from switchyard.types import ChatMessage, RequestView


def view(text: str, model: str = "m1") -> RequestView:
    return RequestView(request_id="r", model=model, messages=(ChatMessage("user", text),))


def answer(text: str) -> bytes:
    return orjson.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": "m1",
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}]})


async def make_cache(**overrides: Any) -> ResponseCache:
    backend = EmbeddedCacheBackendConfig(path="", **overrides.pop("backend", {}))
    settings: dict[str, Any] = {"min_similarity": 0.9, "threshold": 0.9, **overrides}
    cfg = CacheConfig(enabled=True, verifier="none", backend=backend, **settings)
    store = await MemoryStore.open(backend, 384)
    return ResponseCache(cfg, store, HashingEmbedder(), None)


def scope(tenant: str = "t1", **kw: Any) -> CacheScope:
    return CacheScope(tenant=tenant, **kw)


async def test_exact_then_semantic_hit_and_miss() -> None:
    cache = await make_cache()
    assert (await cache.lookup(view("How do I boil an egg?"), scope())).status == "miss"
    assert await cache.store(view("How do I boil an egg?"), scope(), answer("10 minutes"))
    exact = await cache.lookup(view("how do i  BOIL an egg?"), scope())
    assert (exact.status, exact.match) == ("hit", "exact")
    assert exact.response == answer("10 minutes")
    semantic = await cache.lookup(view("How do I boil an egg"), scope())  # same words
    assert (semantic.status, semantic.match) == ("hit", "semantic")
    assert semantic.similarity is not None and semantic.similarity > 0.99
    other = await cache.lookup(view("What is the tallest mountain on Earth?"), scope())
    assert other.status == "miss"
    stats = await cache.stats()
    assert (stats.hits, stats.exact_hits, stats.semantic_hits, stats.misses) == (2, 1, 1, 2)


async def test_tenant_isolation_same_prompt_two_tenants() -> None:
    cache = await make_cache()
    prompt = "What is our internal launch code?"
    await cache.store(view(prompt), scope("alice"), answer("alice-secret"))
    for text in (prompt, prompt.lower(), "What is our internal launch code"):
        result = await cache.lookup(view(text), scope("mallory"))
        assert result.status == "miss"
        assert result.response is None
    # Mallory now stores her own answer for the very same prompt: each sees only their own.
    await cache.store(view(prompt), scope("mallory"), answer("mallory-answer"))
    assert (await cache.lookup(view(prompt), scope("alice"))).response == answer("alice-secret")
    assert (await cache.lookup(view(prompt), scope("mallory"))).response == answer(
        "mallory-answer")
    assert await cache.clear("alice") == 1
    assert (await cache.lookup(view(prompt), scope("alice"))).status == "miss"
    assert (await cache.lookup(view(prompt), scope("mallory"))).status == "hit"


async def test_shared_scope_is_opt_in() -> None:
    cache = await make_cache(scope="shared")
    await cache.store(view("Define entropy."), scope("alice"), answer("disorder"))
    assert (await cache.lookup(view("Define entropy."), scope("bob"))).status == "hit"


async def test_model_and_parameters_partition_entries() -> None:
    cache = await make_cache()
    await cache.store(view("Define entropy."), scope(), answer("disorder"))
    assert (await cache.lookup(view("Define entropy.", model="m2"), scope())).status == "miss"
    limited = scope(body={"max_tokens": 3})
    assert (await cache.lookup(view("Define entropy."), limited)).status == "miss"


async def test_ineligible_and_policy_bypass() -> None:
    cache = await make_cache(categories=[CacheCategoryRule(match=["legal"], enabled=False)])
    await cache.store(view("Define entropy."), scope(), answer("disorder"))
    sampled = await cache.lookup(view("Define entropy."), scope(body={"temperature": 0.8}))
    assert (sampled.status, sampled.reason) == ("bypass", "temperature")
    pii = await cache.lookup(view("Define entropy."), scope(labels=("pii",)))
    assert (pii.status, pii.reason) == ("bypass", "label:pii")
    assert not await cache.store(view("Is this legal?"), scope(decision="legal"), answer("x"))
    assert not await cache.store(view("My SSN is 123"), scope(labels=("pii",)), answer("x"))
    assert not await cache.store(view("Bad answer"), scope(), b'{"error": {}}')


async def test_stricter_category_threshold_recorded_with_the_entry() -> None:
    cache = await make_cache(
        threshold=0.5, min_similarity=0.5,
        categories=[CacheCategoryRule(match=["code"], threshold=0.999, min_similarity=0.999)])
    await cache.store(view("sort a list in python quickly"), scope(decision="code"), answer("a"))
    await cache.store(view("best pizza in naples today"), scope(), answer("b"))
    # Lookups run before routing (no decision yet); the entry's own rule still applies.
    near_code = await cache.lookup(view("sort a list in python"), scope())
    near_chat = await cache.lookup(view("best pizza in naples"), scope())
    assert near_code.status == "miss"
    assert (near_chat.status, near_chat.response) == ("hit", answer("b"))


async def test_ttl_expiry() -> None:
    backend = EmbeddedCacheBackendConfig(path="")
    now = [1000.0]
    cache = ResponseCache(CacheConfig(enabled=True, verifier="none", ttl_s=60, backend=backend),
                          await MemoryStore.open(backend, 384), HashingEmbedder(), None,
                          clock=lambda: now[0])
    await cache.store(view("Define entropy."), scope(), answer("disorder"))
    now[0] += 59.0
    assert (await cache.lookup(view("Define entropy."), scope())).status == "hit"
    assert (await cache.lookup(view("Define entropy"), scope())).status == "hit"  # semantic
    now[0] += 1.5
    assert (await cache.lookup(view("Define entropy."), scope())).status == "miss"
    assert (await cache.lookup(view("Define entropy"), scope())).status == "miss"
    stats = await cache.stats()
    assert stats.store is not None
    assert (stats.store.entries, stats.store.expirations) == (0, 1)


async def test_eviction_by_entries_is_lru() -> None:
    cache = await make_cache(backend={"max_entries": 5})
    for i in range(5):
        await cache.store(view(f"question number {i} zz{i}"), scope(), answer(str(i)))
    assert (await cache.lookup(view("question number 0 zz0"), scope())).status == "hit"
    for i in range(5, 20):
        await cache.store(view(f"question number {i} zz{i}"), scope(), answer(str(i)))
        stats = await cache.stats()
        assert stats.store is not None and stats.store.entries <= 5
    stats = await cache.stats()
    assert stats.store is not None
    assert (stats.store.entries, stats.store.evictions) == (5, 15)
    hits = [(await cache.lookup(view(f"question number {i} zz{i}"), scope())).status == "hit"
            for i in range(20)]
    assert hits == [False] * 15 + [True] * 5


@pytest.mark.parametrize("size", [2000, 5000])
async def test_eviction_by_bytes(size: int) -> None:
    limit = 20_000
    cache = await make_cache(backend={"max_bytes": limit})
    for i in range(30):
        await cache.store(view(f"q{i} about things"), scope(), answer("x" * size))
        stats = await cache.stats()
        assert stats.store is not None
        assert stats.store.bytes <= limit
    stats = await cache.stats()
    assert stats.store is not None
    assert stats.store.entries >= 1
    assert stats.store.evictions == 30 - stats.store.entries


async def test_restore_same_key_replaces_entry() -> None:
    cache = await make_cache()
    await cache.store(view("Define entropy."), scope(), answer("old"))
    await cache.store(view("Define entropy."), scope(), answer("new"))
    stats = await cache.stats()
    assert stats.store is not None and stats.store.entries == 1
    assert (await cache.lookup(view("Define entropy."), scope())).response == answer("new")


async def test_partition_index_grows_and_reuses_deleted_slots() -> None:
    cache = await make_cache(backend={"max_entries": 40})
    for i in range(120):
        await cache.store(view(f"item {i} w{i} v{i * 7}"), scope(), answer(str(i)))
    stats = await cache.stats()
    assert stats.store is not None and stats.store.entries == 40
    result = await cache.lookup(view("item 119 w119 v833"), scope())
    assert (result.status, result.response) == ("hit", answer("119"))


class BrokenEmbedder(HashingEmbedder):
    async def embed(self, texts: Any) -> Any:
        raise RuntimeError("model crashed")


async def test_embedder_failure_bypasses_instead_of_failing() -> None:
    backend = EmbeddedCacheBackendConfig(path="")
    cache = ResponseCache(CacheConfig(enabled=True, verifier="none", backend=backend),
                          await MemoryStore.open(backend, 384), BrokenEmbedder(), None)
    result = await cache.lookup(view("anything"), scope())
    assert (result.status, result.reason) == ("bypass", "cache_error")
    assert not await cache.store(view("anything"), scope(), answer("x"))


async def test_reopen_restores_entries_index_and_lru_order(tmp_path: Any) -> None:
    backend = EmbeddedCacheBackendConfig(path=str(tmp_path / "cache.sqlite"), max_entries=300)
    cfg = CacheConfig(enabled=True, verifier="none", backend=backend, min_similarity=0.9,
                      threshold=0.9)
    cache = ResponseCache(cfg, await MemoryStore.open(backend, 384), HashingEmbedder(), None)
    for i in range(300):
        await cache.store(view(f"restored question {i} k{i}"), scope(), answer(str(i)))
    first = await cache.lookup(view("restored question 0 k0?"), scope())  # now most recent
    assert (first.status, first.match) == ("hit", "semantic")
    await cache.store(view("one more to flush the access time"), scope(), answer("x"))
    await cache.aclose()
    reopened = ResponseCache(cfg, await MemoryStore.open(backend, 384), HashingEmbedder(), None)
    for i in (0, 7, 150, 299):
        found = await reopened.lookup(view(f"restored question {i} k{i}?"), scope())
        assert (found.status, found.match, found.response) == ("hit", "semantic", answer(str(i)))
    await reopened.store(view("a new entry evicts the least recently used"), scope(), answer("y"))
    evicted = await reopened.lookup(view("restored question 2 k2"), scope())
    kept = await reopened.lookup(view("restored question 0 k0"), scope())
    assert (evicted.status, kept.status) == ("miss", "hit")
    await reopened.aclose()


async def test_expiry_burst_is_spread_over_lookups_and_never_served() -> None:
    backend = EmbeddedCacheBackendConfig(path="")
    now = [1000.0]
    cache = ResponseCache(CacheConfig(enabled=True, verifier="none", ttl_s=60, backend=backend,
                                      min_similarity=0.9, threshold=0.9),
                          await MemoryStore.open(backend, 384), HashingEmbedder(), None,
                          clock=lambda: now[0])
    for i in range(500):
        await cache.store(view(f"burst question {i} b{i}"), scope(), answer(str(i)))
    now[0] += 61.0
    store = cache._store
    assert isinstance(store, MemoryStore)
    first = await cache.lookup(view("burst question 0 b0"), scope())  # exact + semantic find
    assert (first.status, len(store._entries)) == ("miss", 500 - 2 * 64)
    # entries 498 and 499 are still in memory, expired: neither match kind may serve them
    exact = await cache.lookup(view("burst question 498 b498"), scope())
    semantic = await cache.lookup(view("burst question 499 b499?"), scope())
    assert (exact.status, semantic.status) == ("miss", "miss")
    assert 499 + 1 in store._entries
    stats = await cache.stats()  # the periodic stats call clears the rest
    assert stats.store is not None and (stats.store.entries, stats.store.expirations) == (0, 500)
