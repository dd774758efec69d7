"""Embedded cache restart time at 100k entries: rebuilding the HNSW index from the SQLite rows
vs loading the index a clean shutdown saved (`save_index`, the default).

    python bench/cache_restart.py [--entries N] [--repeats R]

The rows are written straight into the SQLite file (one transaction), then the store is opened
`repeats` times each way, alternating; medians are reported. After each open, 200 stored vectors
are looked up (each should find its own entry): recall@1 of the saved vs the rebuilt index.
Vectors are random unit rows (as in bench/_cache_latency.py).
Writes bench/results/cache_restart.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _cache_latency import DIM, entry_for, unit_rows  # noqa: E402
from _results import write_results  # noqa: E402
from switchyard.cache.base import StoreQuery  # noqa: E402
from switchyard.cache.memory import MemoryStore, _row  # noqa: E402
from switchyard.config.cache import EmbeddedCacheBackendConfig  # noqa: E402


async def fill(config: EmbeddedCacheBackendConfig, vectors: np.ndarray) -> None:
    store = await MemoryStore.open(config, DIM)
    assert store._log is not None
    now = time.time()
    rows = []
    for i, vector in enumerate(vectors):
        rows.append(_row(replace(entry_for(f"question {i}", vector), entry_id=i + 1), now))
    store._log.write(rows, [], [])
    await store.aclose()


async def timed_open(
    config: EmbeddedCacheBackendConfig, probes: np.ndarray
) -> tuple[float, int, list[int]]:
    started = time.perf_counter()
    store = await MemoryStore.open(config, DIM)
    seconds = time.perf_counter() - started
    found = []
    for vector in probes:
        query = StoreQuery(tenant="bench", partition="p", exact_key=None, vector=vector, k=1,
                           now=time.time())
        candidates = await store.find(query)
        found.append(candidates[0].entry.entry_id if candidates else -1)
    loaded = store.partitions_loaded
    await store.aclose()  # saves the snapshot again (when enabled)
    return seconds, loaded, found


async def run(entries: int, repeats: int) -> dict[str, float]:
    vectors = unit_rows(np.random.default_rng(0), entries)
    step = max(1, entries // 200)
    probes = vectors[::step]
    own = np.arange(len(probes)) * step + 1  # each probe is a stored vector: its own entry id
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "cache.sqlite")
        saving = EmbeddedCacheBackendConfig(path=path, max_entries=entries + 10, max_bytes=2**40)
        rebuilding = saving.model_copy(update={"save_index": False})
        await fill(rebuilding, vectors)
        await timed_open(saving, probes)  # first start: rebuild, then save at close
        rebuild_s, load_s = [], []
        for _ in range(repeats):
            seconds, loaded, from_snapshot = await timed_open(saving, probes)
            assert loaded == 1, "the saved index was not used"
            load_s.append(seconds)
            seconds, loaded, rebuilt = await timed_open(rebuilding, probes)
            assert loaded == 0
            rebuild_s.append(seconds)
            recall_saved = float(np.mean(np.array(from_snapshot) == own))
            recall_rebuilt = float(np.mean(np.array(rebuilt) == own))
        snapshot_mb = sum(p.stat().st_size for p in Path(path + ".index").iterdir()) / 2**20
    return {
        "entries": float(entries),
        "open_rebuild_s_median": statistics.median(rebuild_s),
        "open_saved_index_s_median": statistics.median(load_s),
        "speedup": statistics.median(rebuild_s) / statistics.median(load_s),
        "recall_at_1_saved_index": recall_saved,
        "recall_at_1_rebuilt_index": recall_rebuilt,
        "snapshot_mb": snapshot_mb,
        "repeats": float(repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    metrics = asyncio.run(run(args.entries, args.repeats))
    lines = ["# Embedded cache restart", "",
             f"{int(metrics['entries'])} entries in one partition, {int(metrics['repeats'])} opens "
             "each way (alternating), medians; random unit vectors, 384 dims.", "",
             "| metric | value |", "|---|---:|"]
    lines += [f"| {key} | {value:.3f} |" for key, value in metrics.items()]
    write_results("cache_restart", metrics, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
