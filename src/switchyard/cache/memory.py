"""Embedded cache store: one in-process HNSW index (hnswlib) per partition, entries in memory,
every change written through to a SQLite file so the cache survives restarts.

Bounded by entry count and bytes (least recently used goes first) and by per-entry TTL.
Lookups run on the event loop (sub-millisecond, no I/O); SQLite writes run on one worker
thread owned by the store. On open, the saved entries are restored off the event loop and
each partition's index is built in one multi-threaded call (not one insert per entry), or
loaded from the snapshot a clean shutdown saved (`memory_snapshot`).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import sqlite3
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from switchyard.cache.base import CacheEntry, Candidate, StoreQuery, StoreStats, Vector
from switchyard.cache.memory_snapshot import (
    Snapshot,
    parameters,
    snapshot_dir,
    take_snapshot,
    usable,
    write_snapshot,
)
from switchyard.config.cache import EmbeddedCacheBackendConfig

logger = logging.getLogger(__name__)
_INITIAL_CAPACITY = 64
# A lookup removes at most this many expired entries (a burst that expires together would
# otherwise stall that one request); it never serves an expired entry either way.
_EXPIRE_PER_LOOKUP = 64
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache_entries (
    id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, partition TEXT NOT NULL,
    exact_key TEXT NOT NULL, query_text TEXT NOT NULL, vector BLOB, response BLOB NOT NULL,
    category TEXT NOT NULL, min_score REAL NOT NULL, min_similarity REAL NOT NULL,
    semantic INTEGER NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
    last_access REAL NOT NULL)
"""
_COLUMNS = ("id, tenant, partition, exact_key, query_text, vector, response, category, "
            "min_score, min_similarity, semantic, created_at, expires_at, last_access")


class _PartitionIndex:
    """HNSW over the vectors of one partition; labels are entry ids."""

    def __init__(
        self, dim: int, cfg: EmbeddedCacheBackendConfig, saved: tuple[Path, int] | None = None
    ) -> None:
        """An empty index, or a saved one: `saved` = (file, how many of its elements are live)."""
        self._index = hnswlib.Index(space="ip", dim=dim)
        if saved is None:
            self._index.init_index(max_elements=_INITIAL_CAPACITY, M=cfg.hnsw_m,
                                   ef_construction=cfg.hnsw_ef_construction,
                                   allow_replace_deleted=True)
            self.live = 0
        else:
            self._index.load_index(str(saved[0]), max_elements=0, allow_replace_deleted=True)
            self.live = saved[1]
        self._capacity = self._index.get_max_elements()
        self._deleted = self._index.get_current_count() - self.live
        self._index.set_ef(cfg.hnsw_ef_search)
        self._index.set_num_threads(1)
        self._ef = cfg.hnsw_ef_search

    @property
    def hnsw(self) -> hnswlib.Index:
        return self._index

    def add(self, entry_id: int, vector: Vector) -> None:
        if self._deleted == 0 and self.live >= self._capacity:
            self._capacity *= 2
            self._index.resize_index(self._capacity)
        self._index.add_items(vector[None, :], [entry_id], num_threads=1,
                              replace_deleted=self._deleted > 0)
        if self._deleted > 0:
            self._deleted -= 1
        self.live += 1

    def add_many(self, entry_ids: list[int], vectors: Vector) -> None:
        """Bulk insert into an index without deleted slots (restore), on every core."""
        assert self._deleted == 0
        needed = self.live + len(entry_ids)
        if needed > self._capacity:
            self._capacity = max(needed, 2 * self._capacity)
            self._index.resize_index(self._capacity)
        self._index.add_items(vectors, entry_ids, num_threads=os.cpu_count() or 1)
        self.live += len(entry_ids)

    def remove(self, entry_id: int) -> None:
        self._index.mark_deleted(entry_id)
        self.live -= 1
        self._deleted += 1

    def search(self, vector: Vector, k: int) -> list[tuple[int, float]]:
        k = min(k, self.live)
        if k <= 0:
            return []
        self._index.set_ef(max(self._ef, k))
        while True:
            try:
                labels, distances = self._index.knn_query(vector[None, :], k=k, num_threads=1)
                break
            except RuntimeError:  # fewer reachable elements than k (after many deletions)
                if k == 1:
                    return []
                k = max(1, k // 2)
        return [(int(label), 1.0 - float(dist)) for label, dist in zip(labels[0], distances[0],
                                                                         strict=True)]


class _SqliteLog:
    """Write-through durability. Used only from the store's single worker thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        self._conn.commit()

    def load(self, now: float) -> list[tuple[Any, ...]]:
        self._conn.execute("DELETE FROM cache_entries WHERE expires_at <= ?", (now,))
        self._conn.commit()
        cursor = self._conn.execute(
            f"SELECT {_COLUMNS} FROM cache_entries ORDER BY last_access, id")  # noqa: S608
        return list(cursor.fetchall())

    def write(self, inserts: list[tuple[Any, ...]], deletes: list[int],
              touches: list[tuple[float, int]]) -> None:
        if inserts:
            marks = ", ".join("?" * 14)
            self._conn.executemany(
                f"INSERT OR REPLACE INTO cache_entries ({_COLUMNS}) VALUES ({marks})", inserts)
        if deletes:
            self._conn.executemany("DELETE FROM cache_entries WHERE id = ?",
                                   [(i,) for i in deletes])
        if touches:
            self._conn.executemany("UPDATE cache_entries SET last_access = ? WHERE id = ?",
                                   touches)
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()


def _row(entry: CacheEntry, last_access: float) -> tuple[Any, ...]:
    vector = None if entry.vector is None else entry.vector.astype(np.float32).tobytes()
    return (entry.entry_id, entry.tenant, entry.partition, entry.exact_key, entry.query_text,
            vector, entry.response, entry.category, entry.min_score, entry.min_similarity,
            int(entry.semantic), entry.created_at, entry.expires_at, last_access)


def _entry(row: tuple[Any, ...]) -> CacheEntry:
    vector = None if row[5] is None else np.frombuffer(row[5], dtype=np.float32).copy()
    return CacheEntry(entry_id=row[0], tenant=row[1], partition=row[2], exact_key=row[3],
                      query_text=row[4], vector=vector, response=bytes(row[6]),
                      category=row[7], min_score=row[8], min_similarity=row[9],
                      semantic=bool(row[10]), created_at=row[11], expires_at=row[12])


class MemoryStore:
    """The embedded `CacheStore`. Create with `await MemoryStore.open(cfg, dim)`."""

    def __init__(self, cfg: EmbeddedCacheBackendConfig, dim: int, admin_only: bool = False) -> None:
        self._cfg = cfg
        self._dim = dim
        self._entries: OrderedDict[int, CacheEntry] = OrderedDict()  # LRU order
        self._exact: dict[tuple[str, str], int] = {}
        self._indexes: dict[str, _PartitionIndex] = {}
        self._expiry: list[tuple[float, int]] = []
        self._tenants: Counter[str] = Counter()
        self._bytes = 0
        self._next_id = 1
        self.evictions = 0
        self.expirations = 0
        self._touches: dict[int, float] = {}
        self._deletes: list[int] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-sqlite")
        self._log = _SqliteLog(Path(cfg.path)) if cfg.path else None
        # admin_only (stats / clear from the CLI): no search indexes, saved ones left alone
        self._build_indexes = not admin_only
        saving = cfg.path and cfg.save_index and not admin_only
        self._snapshots = snapshot_dir(Path(cfg.path)) if saving else None
        self._params = parameters(dim, cfg.hnsw_m, cfg.hnsw_ef_construction)
        self.partitions_loaded = 0  # indexes taken from a snapshot at open (not rebuilt)

    @classmethod
    async def open(
        cls, cfg: EmbeddedCacheBackendConfig, dim: int, admin_only: bool = False
    ) -> MemoryStore:
        """Load the saved entries. `admin_only` (stats / clear from the CLI): no search indexes
        are built or loaded and the saved ones are neither read nor replaced."""
        store = cls(cfg, dim, admin_only)
        if store._log is not None:
            log = store._log
            loop = asyncio.get_running_loop()
            rows = await loop.run_in_executor(store._executor, log.load, time.time())
            # not used by anyone until returned: safe to fill from the worker thread
            await loop.run_in_executor(store._executor, store._restore, rows)
            store._enforce_bounds(time.time())
        return store

    def _restore(self, rows: list[tuple[Any, ...]]) -> None:
        """Saved rows (least recently used first) into memory; one index build per partition."""
        indexed: dict[str, list[CacheEntry]] = {}
        for row in rows:
            entry = _entry(row)
            self._insert(entry, with_index=False)
            if entry.vector is not None and entry.semantic:
                indexed.setdefault(entry.partition, []).append(entry)
        if not self._build_indexes:
            return
        snapshot = take_snapshot(self._snapshots, self._params) if self._snapshots else None
        if snapshot is not None:  # ids of entries deleted before the shutdown are never reused
            self._next_id = max(self._next_id, snapshot.next_id)
        for partition, entries in indexed.items():
            loaded = self._load_index(snapshot, partition, entries)
            if loaded is not None:
                self._indexes[partition] = loaded
                continue
            vectors = np.stack([e.vector for e in entries if e.vector is not None])
            index = self._indexes[partition] = _PartitionIndex(self._dim, self._cfg)
            index.add_many([e.entry_id for e in entries], vectors)

    def _load_index(
        self, snapshot: Snapshot | None, partition: str, entries: list[CacheEntry]
    ) -> _PartitionIndex | None:
        saved = snapshot.partitions.get(partition) if snapshot is not None else None
        if saved is None:
            return None
        dead = usable(saved, np.array([e.entry_id for e in entries], dtype=np.int64))
        if dead is None:
            return None
        try:
            index = _PartitionIndex(self._dim, self._cfg, (saved.path, len(saved.ids)))
            labels = np.asarray(index.hnsw.get_ids_list(), dtype=np.int64)
            if not np.isin(saved.ids, labels).all():  # file and manifest from different saves
                raise ValueError("the index file does not hold the manifest's ids")
        except (RuntimeError, OSError, ValueError) as error:
            logger.warning("cache index snapshot of a partition unusable (%s): rebuilding", error)
            return None
        for entry_id in dead.tolist():  # expired or removed while the gateway was down
            index.remove(int(entry_id))
        self.partitions_loaded += 1
        return index

    def _snapshot_job(self) -> Callable[[], None] | None:
        """The snapshot write, its inputs taken now (on the event loop), run on the worker."""
        directory = self._snapshots
        if directory is None:
            return None
        ids: dict[str, list[int]] = {}
        for entry_id, entry in self._entries.items():
            if entry.vector is not None and entry.semantic:
                ids.setdefault(entry.partition, []).append(entry_id)
        indexes = {partition: index.hnsw for partition, index in self._indexes.items()}
        arrays = {p: np.array(sorted(v), dtype=np.int64) for p, v in ids.items()}
        params, next_id = self._params, self._next_id

        def job() -> None:  # a failure only costs the next start a rebuild
            try:
                write_snapshot(directory, params, indexes, arrays, next_id)
            except (OSError, RuntimeError) as error:
                logger.warning("cache index snapshot not saved (%s): next start rebuilds", error)

        return job

    # -- in-memory bookkeeping (event loop only) -------------------------------------------
    def _insert(self, entry: CacheEntry, with_index: bool = True) -> None:
        self._next_id = max(self._next_id, entry.entry_id + 1)
        self._entries[entry.entry_id] = entry
        self._exact[(entry.partition, entry.exact_key)] = entry.entry_id
        if with_index and entry.vector is not None and entry.semantic:
            index = self._indexes.get(entry.partition)
            if index is None:
                index = self._indexes[entry.partition] = _PartitionIndex(self._dim, self._cfg)
            index.add(entry.entry_id, entry.vector)
        heapq.heappush(self._expiry, (entry.expires_at, entry.entry_id))
        self._tenants[entry.tenant] += 1
        self._bytes += entry.size_bytes

    def _remove(self, entry_id: int) -> CacheEntry | None:
        entry = self._entries.pop(entry_id, None)
        if entry is None:
            return None
        if self._exact.get((entry.partition, entry.exact_key)) == entry_id:
            del self._exact[(entry.partition, entry.exact_key)]
        index = self._indexes.get(entry.partition)
        if index is not None and entry.vector is not None and entry.semantic:
            index.remove(entry_id)
            if index.live == 0:
                del self._indexes[entry.partition]
        self._tenants[entry.tenant] -= 1
        if self._tenants[entry.tenant] <= 0:
            del self._tenants[entry.tenant]
        self._bytes -= entry.size_bytes
        self._touches.pop(entry_id, None)
        self._deletes.append(entry_id)
        return entry

    def _expire(self, now: float, limit: int | None = None) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            if limit is not None:
                if limit <= 0:
                    return
                limit -= 1
            expires_at, entry_id = heapq.heappop(self._expiry)
            entry = self._entries.get(entry_id)
            if entry is not None and entry.expires_at == expires_at:
                self._remove(entry_id)
                self.expirations += 1

    def _enforce_bounds(self, now: float) -> None:
        self._expire(now)
        while self._entries and (len(self._entries) > self._cfg.max_entries
                                 or self._bytes > self._cfg.max_bytes):
            oldest = next(iter(self._entries))
            self._remove(oldest)
            self.evictions += 1

    def _touch(self, entry_id: int, now: float) -> None:
        self._entries.move_to_end(entry_id)
        self._touches[entry_id] = now

    # -- CacheStore ------------------------------------------------------------------------
    async def find(self, query: StoreQuery) -> Sequence[Candidate]:
        self._expire(query.now, _EXPIRE_PER_LOOKUP)
        found: list[Candidate] = []
        if query.exact_key is not None:
            entry_id = self._exact.get((query.partition, query.exact_key))
            entry = self._entries.get(entry_id) if entry_id is not None else None
            if (entry is not None and entry.tenant == query.tenant
                    and entry.expires_at > query.now):
                self._touch(entry.entry_id, query.now)
                return [Candidate(entry=entry, similarity=1.0, exact=True)]
        index = self._indexes.get(query.partition)
        if query.vector is not None and index is not None:
            for entry_id, similarity in index.search(query.vector, query.k):
                entry = self._entries.get(entry_id)
                # The partition hash includes the tenant; checking both is belt and braces.
                if entry is not None and entry.tenant == query.tenant and (
                        entry.partition == query.partition and entry.expires_at > query.now):
                    found.append(Candidate(entry=entry, similarity=similarity))
        return found

    def touch(self, entry_id: int) -> None:
        """Mark a served entry as recently used (called by the cache on a hit)."""
        if entry_id in self._entries:
            self._touch(entry_id, time.time())

    async def put(self, entry: CacheEntry) -> None:
        now = entry.created_at  # the cache's clock
        existing = self._exact.get((entry.partition, entry.exact_key))
        if existing is not None:
            self._remove(existing)
        stored = replace(entry, entry_id=self._next_id)
        self._insert(stored)
        self._enforce_bounds(now)
        inserts = [_row(stored, now)] if stored.entry_id in self._entries else []
        await self._flush(inserts)

    async def _flush(self, inserts: list[tuple[Any, ...]]) -> None:
        deletes, self._deletes = self._deletes, []
        touches = [(ts, entry_id) for entry_id, ts in self._touches.items()]
        self._touches = {}
        if self._log is None or not (inserts or deletes or touches):
            return
        await asyncio.get_running_loop().run_in_executor(
            self._executor, self._log.write, inserts, deletes, touches)

    async def stats(self) -> StoreStats:
        self._expire(time.time())
        return StoreStats(entries=len(self._entries), bytes=self._bytes,
                          evictions=self.evictions, expirations=self.expirations,
                          tenants=dict(self._tenants))

    async def clear(self, tenant: str | None = None) -> int:
        doomed = [i for i, e in self._entries.items() if tenant is None or e.tenant == tenant]
        for entry_id in doomed:
            self._remove(entry_id)
        await self._flush([])
        return len(doomed)

    async def aclose(self) -> None:
        await self._flush([])
        if self._log is not None:
            log = self._log
            loop = asyncio.get_running_loop()
            job = self._snapshot_job()
            if job is not None:
                await loop.run_in_executor(self._executor, job)
            await loop.run_in_executor(self._executor, log.close)
        self._executor.shutdown(wait=True)
