"""Shared cache store: one PostgreSQL table with a pgvector HNSW index, so every gateway
replica reads what any replica stored.

Every query has a timeout. When PostgreSQL is unreachable the store raises
`CacheBackendError` at once (the cache turns that into a bypass) and does not try again for
`retry_after_s`, so an outage costs requests nothing but the cache.

Lookup cost (one round trip, one prepared statement per pooled connection; the pool does
not `RESET ALL` on release, see `_keep_session`):
- the HNSW index is built over `embedding::halfvec(dim)` (half the pages of a `vector` index,
  so it stays in shared buffers; float16 is plenty to rank near-duplicates) and the query
  orders by exactly that expression, or PostgreSQL would not use it; the similarity reported
  for the k rows found is recomputed in full precision.
- hits only record their access time in memory; one batched UPDATE writes them a second later.
  `last_access` has no index, so those updates are HOT (heap-only) and never add a tuple to
  the HNSW index (an indexed `last_access` made every hit re-insert its vector there).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import numpy as np

from switchyard.cache.base import (
    CacheBackendError,
    CacheEntry,
    Candidate,
    StoreQuery,
    StoreStats,
    Vector,
)
from switchyard.config.cache import PgvectorCacheBackendConfig

logger = logging.getLogger(__name__)
_TRIM_EVERY_PUTS = 256
_TOUCH_FLUSH_S = 1.0
_COLUMNS = ("id, tenant, partition, exact_key, query_text, embedding, response, category, "
            "min_score, min_similarity, semantic, created_at, expires_at")


def _encode_vector(value: Any) -> bytes:
    array = np.asarray(value, dtype=">f4")
    return struct.pack(">HH", array.shape[0], 0) + array.tobytes()


def _decode_vector(data: bytes) -> Vector:
    dim = struct.unpack_from(">H", data)[0]
    return np.frombuffer(data, dtype=">f4", count=dim, offset=4).astype(np.float32)


def hnsw_index_sql(table: str, dim: int) -> str:
    """The ANN index; `find` orders by the same `embedding::halfvec(dim)` expression."""
    return (f"CREATE INDEX IF NOT EXISTS {table}_hnsw_half ON {table} "
            f"USING hnsw ((embedding::halfvec({dim})) halfvec_ip_ops)")


def _schema(table: str, dim: int) -> list[str]:
    return [
        "CREATE EXTENSION IF NOT EXISTS vector",
        f"""CREATE TABLE IF NOT EXISTS {table} (
            id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, partition TEXT NOT NULL,
            exact_key TEXT NOT NULL, query_text TEXT NOT NULL, embedding vector({dim}),
            response BYTEA NOT NULL, category TEXT NOT NULL, min_score REAL NOT NULL,
            min_similarity REAL NOT NULL, semantic BOOLEAN NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
            last_access DOUBLE PRECISION NOT NULL, UNIQUE (partition, exact_key))
            WITH (fillfactor = 90)""",
        # indexes of earlier versions: full-precision HNSW (unused by `find`) and the one on
        # last_access that turned every hit's access-time update into an HNSW insert
        f"DROP INDEX IF EXISTS {table}_hnsw",
        f"DROP INDEX IF EXISTS {table}_access",
        hnsw_index_sql(table, dim),
        f"CREATE INDEX IF NOT EXISTS {table}_tenant ON {table} (tenant)",
        f"CREATE INDEX IF NOT EXISTS {table}_expires ON {table} (expires_at)",
    ]


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's default `RESET ALL`: that is one more round trip per
    query, and it would undo the `SET hnsw.*` of `_init_connection` after the first query.
    Our queries leave no session state behind (asyncpg still rolls back an open transaction)."""


def _entry(row: asyncpg.Record) -> CacheEntry:
    return CacheEntry(entry_id=row["id"], tenant=row["tenant"], partition=row["partition"],
                      exact_key=row["exact_key"], query_text=row["query_text"],
                      vector=row["embedding"], response=bytes(row["response"]),
                      category=row["category"], min_score=row["min_score"],
                      min_similarity=row["min_similarity"], semantic=row["semantic"],
                      created_at=row["created_at"], expires_at=row["expires_at"])


class PgvectorStore:
    """The shared `CacheStore`. Create with `await PgvectorStore.open(cfg, dim)`; opening
    never fails on an unreachable server (the first queries then bypass)."""

    def __init__(self, cfg: PgvectorCacheBackendConfig, dim: int) -> None:
        self._cfg = cfg
        self._dim = dim
        self._table = cfg.table
        self._pool: asyncpg.Pool | None = None
        self._retry_at = 0.0
        self._connect_lock = asyncio.Lock()
        self._puts = 0
        self._background: set[asyncio.Task[None]] = set()
        self._touched: dict[int, float] = {}
        self._touch_flush: asyncio.Task[None] | None = None
        t = self._table
        self._exact_sql = (f"SELECT {_COLUMNS} FROM {t} WHERE partition = $1 AND exact_key = $2"
                           " AND tenant = $3 AND expires_at > $4")
        self._nearest_sql = (
            f"SELECT {_COLUMNS}, -(embedding <#> $1::vector) AS similarity FROM {t} "
            "WHERE partition = $2 AND tenant = $3 AND expires_at > $4 AND semantic "
            f"ORDER BY embedding::halfvec({dim}) <#> $1::vector::halfvec({dim}) LIMIT $5")
        self.evictions = 0
        self.expirations = 0

    @classmethod
    async def open(cls, cfg: PgvectorCacheBackendConfig, dim: int) -> PgvectorStore:
        store = cls(cfg, dim)
        try:
            await store._ensure_pool()
        except CacheBackendError as exc:
            logger.warning("pgvector cache unavailable at start, bypassing: %s", exc)
        return store

    async def _init_connection(self, conn: asyncpg.Connection) -> None:
        await conn.set_type_codec("vector", schema="public", encoder=_encode_vector,
                                  decoder=_decode_vector, format="binary")
        await conn.execute(f"SET hnsw.ef_search = {int(self._cfg.hnsw_ef_search)}")
        await conn.execute("SET hnsw.iterative_scan = relaxed_order")

    async def _create_schema(self) -> None:
        conn = await asyncpg.connect(self._cfg.dsn, timeout=self._cfg.timeout_s * 8)
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._table)
                for statement in _schema(self._table, self._dim):
                    await conn.execute(statement)
        finally:
            await conn.close()

    async def _ensure_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        if time.monotonic() < self._retry_at:
            raise CacheBackendError("pgvector cache backing off after a connection failure")
        async with self._connect_lock:
            if self._pool is not None:
                return self._pool
            try:
                await self._create_schema()
                self._pool = await asyncpg.create_pool(
                    self._cfg.dsn, min_size=self._cfg.pool_min_size,
                    max_size=self._cfg.pool_max_size, init=self._init_connection,
                    reset=_keep_session, timeout=self._cfg.timeout_s * 8)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    TimeoutError) as exc:
                self._retry_at = time.monotonic() + self._cfg.retry_after_s
                raise CacheBackendError(f"cannot connect to the pgvector cache: {exc}") from exc
            return self._pool

    async def _run(self, method: str, sql: str, *args: Any) -> Any:
        pool = await self._ensure_pool()
        try:
            async with asyncio.timeout(self._cfg.timeout_s):
                async with pool.acquire() as conn:
                    return await getattr(conn, method)(sql, *args)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            if not isinstance(exc, TimeoutError | asyncpg.PostgresError):
                self._retry_at = time.monotonic() + self._cfg.retry_after_s
            raise CacheBackendError(f"pgvector cache query failed: {exc!r}") from exc

    async def find(self, query: StoreQuery) -> Sequence[Candidate]:
        if query.exact_key is not None:
            row = await self._run("fetchrow", self._exact_sql, query.partition,
                                  query.exact_key, query.tenant, query.now)
            if row is not None:
                self.touch(row["id"])
                return [Candidate(entry=_entry(row), similarity=1.0, exact=True)]
        if query.vector is None:
            return []
        rows = await self._run("fetch", self._nearest_sql, query.vector, query.partition,
                               query.tenant, query.now, query.k)
        found = [Candidate(entry=_entry(r), similarity=float(r["similarity"])) for r in rows]
        return sorted(found, key=lambda c: -c.similarity)

    def touch(self, entry_id: int) -> None:
        """Record a hit's access time (LRU trimming uses it); written in one batch later."""
        self._touched[entry_id] = time.time()
        if self._touch_flush is None:
            self._touch_flush = asyncio.get_running_loop().create_task(self._flush_later())
            self._background.add(self._touch_flush)
            self._touch_flush.add_done_callback(self._background.discard)

    async def _flush_later(self) -> None:
        try:
            await asyncio.sleep(_TOUCH_FLUSH_S)
        finally:
            self._touch_flush = None
        await self.flush_touches()

    async def flush_touches(self) -> None:
        if not self._touched:
            return
        touched, self._touched = self._touched, {}
        try:
            await self._run(
                "execute", f"UPDATE {self._table} AS t SET last_access = v.ts FROM "
                "unnest($1::bigint[], $2::float8[]) AS v(id, ts) WHERE t.id = v.id",
                list(touched), list(touched.values()))
        except CacheBackendError as exc:
            logger.debug("cache touch failed: %s", exc)

    async def put(self, entry: CacheEntry) -> None:
        now = time.time()
        await self._run(
            "execute",
            f"INSERT INTO {self._table} (tenant, partition, exact_key, query_text, embedding, "
            "response, category, min_score, min_similarity, semantic, created_at, expires_at, "
            "last_access) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) "
            "ON CONFLICT (partition, exact_key) DO UPDATE SET query_text = EXCLUDED.query_text,"
            " embedding = EXCLUDED.embedding, response = EXCLUDED.response,"
            " category = EXCLUDED.category, min_score = EXCLUDED.min_score,"
            " min_similarity = EXCLUDED.min_similarity, semantic = EXCLUDED.semantic,"
            " created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,"
            " last_access = EXCLUDED.last_access",
            entry.tenant, entry.partition, entry.exact_key, entry.query_text, entry.vector,
            entry.response, entry.category, entry.min_score, entry.min_similarity,
            entry.semantic, entry.created_at, entry.expires_at, now)
        self._puts += 1
        if self._puts % _TRIM_EVERY_PUTS == 0:
            await self.trim()

    async def trim(self) -> None:
        """Delete expired rows, then the least recently used beyond `max_entries`."""
        t = self._table
        await self.flush_touches()
        expired = await self._run("execute", f"DELETE FROM {t} WHERE expires_at <= $1",
                                  time.time())
        self.expirations += int(expired.split()[-1])
        count = await self._run("fetchval", f"SELECT count(*) FROM {t}")
        excess = int(count) - self._cfg.max_entries
        if excess > 0:
            evicted = await self._run(
                "execute", f"DELETE FROM {t} WHERE id IN (SELECT id FROM {t} "
                "ORDER BY last_access LIMIT $1)", excess)
            self.evictions += int(evicted.split()[-1])

    async def stats(self) -> StoreStats:
        rows = await self._run(
            "fetch", f"SELECT tenant, count(*) AS n, sum(octet_length(response) + "
            f"octet_length(query_text) + {4 * self._dim + 256})::bigint AS bytes "
            f"FROM {self._table} WHERE expires_at > $1 GROUP BY tenant", time.time())
        tenants = {r["tenant"]: int(r["n"]) for r in rows}
        return StoreStats(entries=sum(tenants.values()),
                          bytes=sum(int(r["bytes"] or 0) for r in rows),
                          evictions=self.evictions, expirations=self.expirations,
                          tenants=tenants)

    async def clear(self, tenant: str | None = None) -> int:
        if tenant is None:
            status = await self._run("execute", f"DELETE FROM {self._table}")
        else:
            status = await self._run("execute", f"DELETE FROM {self._table} WHERE tenant = $1",
                                     tenant)
        return int(status.split()[-1])

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._pool is not None:
            await self.flush_touches()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
