"""The embedded cache's saved HNSW indexes: a restart loads them instead of rebuilding, and never
serves what the rows no longer hold."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.cache_embedder import HashingEmbedder
from tests.unit.test_cache_memory import answer, scope, view

from switchyard.cache.memory import MemoryStore
from switchyard.cache.memory_snapshot import MANIFEST, snapshot_dir
from switchyard.cache.semantic import ResponseCache
from switchyard.config.cache import CacheConfig, EmbeddedCacheBackendConfig


def backend(tmp_path: Path, **extra: Any) -> EmbeddedCacheBackendConfig:
    return EmbeddedCacheBackendConfig(path=str(tmp_path / "cache.sqlite"), **extra)


async def open_cache(
    config: EmbeddedCacheBackendConfig, clock: Any = time.time, ttl_s: float = 3600
) -> tuple[ResponseCache, MemoryStore]:
    cfg = CacheConfig(enabled=True, verifier="none", backend=config, min_similarity=0.9,
                      threshold=0.9, ttl_s=ttl_s)
    store = await MemoryStore.open(config, 384)
    return ResponseCache(cfg, store, HashingEmbedder(), None, clock=clock), store


async def fill(config: EmbeddedCacheBackendConfig, count: int) -> None:
    cache, _ = await open_cache(config)
    for i in range(count):
        await cache.store(view(f"snapshot question {i} s{i}"), scope(), answer(str(i)))
    await cache.aclose()


async def hits(cache: ResponseCache, numbers: range | list[int]) -> list[str]:
    found = [await cache.lookup(view(f"snapshot question {i} s{i}?"), scope()) for i in numbers]
    return [f.status for f in found]


async def test_a_restart_loads_the_saved_index_and_answers_like_a_rebuild(tmp_path: Path) -> None:
    await fill(backend(tmp_path), 200)
    assert (snapshot_dir(tmp_path / "cache.sqlite") / MANIFEST).is_file()

    loaded, store = await open_cache(backend(tmp_path))
    assert store.partitions_loaded == 1
    assert not (snapshot_dir(tmp_path / "cache.sqlite") / MANIFEST).exists()  # used once
    assert await hits(loaded, range(0, 200, 7)) == ["hit"] * len(range(0, 200, 7))
    await loaded.aclose()

    rebuilt, store = await open_cache(backend(tmp_path, save_index=False))
    assert store.partitions_loaded == 0
    assert await hits(rebuilt, range(0, 200, 7)) == ["hit"] * len(range(0, 200, 7))
    await rebuilt.aclose()


async def test_entries_gone_while_down_are_never_served_and_ids_are_not_reused(
    tmp_path: Path,
) -> None:
    config = backend(tmp_path)
    past = await open_cache(config, clock=lambda: time.time() - 3600, ttl_s=60)
    old_cache, store = past
    fresh = ResponseCache(old_cache.config.model_copy(update={"ttl_s": 3600}), store,
                          HashingEmbedder(), None)
    for i in range(41):  # even: already expired when the gateway starts again (the last too)
        target = old_cache if i % 2 == 0 else fresh
        await target.store(view(f"snapshot question {i} s{i}"), scope(), answer(str(i)))
    highest = max(store._entries)
    await old_cache.aclose()

    cache, reopened = await open_cache(config)
    assert reopened.partitions_loaded == 1
    assert await hits(cache, range(0, 41, 2)) == ["miss"] * 21
    assert await hits(cache, range(1, 40, 2)) == ["hit"] * 20
    await cache.store(view("snapshot question 100 s100"), scope(), answer("100"))
    assert min(reopened._entries) > 0 and max(reopened._entries) > highest
    found = await cache.lookup(view("snapshot question 100 s100?"), scope())
    assert (found.status, found.response) == ("hit", answer("100"))
    await cache.aclose()


@pytest.mark.parametrize(
    "damage", ["no_manifest", "corrupt_index", "other_parameters", "index_of_another_save"]
)
async def test_a_missing_or_unusable_snapshot_means_a_rebuild(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    await fill(backend(tmp_path), 60)
    directory = snapshot_dir(tmp_path / "cache.sqlite")
    config = backend(tmp_path)
    if damage == "no_manifest":  # what a crash leaves
        (directory / MANIFEST).unlink()
    elif damage == "corrupt_index":
        for path in directory.glob("*.bin"):
            path.write_bytes(b"\0" * 64)
    elif damage == "other_parameters":
        config = backend(tmp_path, hnsw_m=32)
    else:  # an index file written by another process's save, with fewer entries
        other = tmp_path / "other"
        other.mkdir()
        await fill(backend(other), 10)
        for path in snapshot_dir(other / "cache.sqlite").glob("*.bin"):
            (directory / path.name).write_bytes(path.read_bytes())
    cache, store = await open_cache(config)
    assert store.partitions_loaded == 0
    assert await hits(cache, range(60)) == ["hit"] * 60
    if damage in ("corrupt_index", "index_of_another_save"):
        assert "unusable" in caplog.text
    await cache.aclose()


async def test_admin_only_open_leaves_the_saved_index_and_its_clear_is_honoured(
    tmp_path: Path,
) -> None:
    cache, _ = await open_cache(backend(tmp_path))
    for tenant in ("t1", "t2"):  # one partition each
        for i in range(30):
            await cache.store(view(f"snapshot question {i} s{i}"), scope(tenant), answer(str(i)))
    await cache.aclose()
    admin = await MemoryStore.open(backend(tmp_path), 384, admin_only=True)
    assert not admin._indexes and (await admin.stats()).entries == 60
    cleared = ResponseCache(CacheConfig(enabled=True, mode="exact", backend=backend(tmp_path)),
                            admin, None, None)
    assert await cleared.clear("t1") == 30
    await cleared.aclose()
    assert (snapshot_dir(tmp_path / "cache.sqlite") / MANIFEST).is_file()  # not used up

    cache, store = await open_cache(backend(tmp_path))
    assert store.partitions_loaded == 1 and (await store.stats()).entries == 30
    for tenant, expected in (("t1", "miss"), ("t2", "hit")):
        found = [await cache.lookup(view(f"snapshot question {i} s{i}?"), scope(tenant))
                 for i in range(30)]
        assert [f.status for f in found] == [expected] * 30
    await cache.aclose()
