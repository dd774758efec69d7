"""Saved HNSW indexes of the embedded cache, so a restart does not rebuild them.

SQLite stays the source of truth. At a clean shutdown each partition's index is written next to
the SQLite file (`<file>.index/`), with the ids it holds and a manifest written last. At start the
manifest is read and deleted at once (a snapshot is used by one start only: after a crash the
next start rebuilds, it never trusts an index older than the rows). A saved index is used only
when it was built with the same dimension and HNSW parameters and holds every id the rows have
for that partition; ids it holds beyond those (expired while the gateway was down) are marked
deleted. Anything else — no manifest, other parameters, an unreadable file — means a rebuild
from the rows, as without a snapshot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
VERSION = 1
Ids = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SavedIndex:
    """One partition's saved index: its file and the live ids it held when saved."""

    path: Path
    ids: Ids


@dataclass(frozen=True)
class Snapshot:
    """What a clean shutdown left: per-partition indexes and the next free entry id."""

    partitions: dict[str, SavedIndex]
    next_id: int


def snapshot_dir(sqlite_path: Path) -> Path:
    return sqlite_path.with_name(sqlite_path.name + ".index")


def parameters(dim: int, m: int, ef_construction: int) -> dict[str, int]:
    return {"version": VERSION, "dim": dim, "m": m, "ef_construction": ef_construction}


def _file_stem(partition: str) -> str:
    return "p" + hashlib.sha256(partition.encode()).hexdigest()[:24]


def take_snapshot(directory: Path, params: dict[str, int]) -> Snapshot | None:
    """Read and remove the manifest; None when there is none or it does not match `params`."""
    manifest = directory / MANIFEST
    try:
        raw = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("cache index snapshot unreadable (%s): rebuilding", error)
        raw = None
    manifest.unlink(missing_ok=True)  # used by this start only
    if not isinstance(raw, dict) or raw.get("parameters") != params:
        return None
    partitions: dict[str, SavedIndex] = {}
    for partition, stem in dict(raw.get("partitions", {})).items():
        try:
            ids = np.load(directory / f"{stem}.ids.npy").astype(np.int64)
        except (OSError, ValueError) as error:
            logger.warning("cache index snapshot: ids of a partition unreadable (%s)", error)
            continue
        partitions[str(partition)] = SavedIndex(directory / f"{stem}.bin", ids)
    return Snapshot(partitions, int(raw.get("next_id", 1)))


def usable(saved: SavedIndex, ids: Ids) -> Ids | None:
    """The saved ids to mark deleted when `saved` covers every id of `ids`; else None."""
    if np.setdiff1d(ids, saved.ids).size:
        return None
    return np.setdiff1d(saved.ids, ids)


def write_snapshot(
    directory: Path,
    params: dict[str, int],
    indexes: dict[str, Any],
    ids: dict[str, Ids],
    next_id: int,
) -> None:
    """Save every partition index (`save_index(path)`) and its ids, then the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():  # no stale files from earlier partitions
        old.unlink()
    stems: dict[str, str] = {}
    for partition, index in indexes.items():
        stem = _file_stem(partition)
        index.save_index(str(directory / f"{stem}.bin"))
        np.save(directory / f"{stem}.ids.npy", ids.get(partition, np.zeros(0, np.int64)))
        stems[partition] = stem
    manifest = {"parameters": params, "partitions": stems, "next_id": next_id}
    temporary = directory / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps(manifest), encoding="utf-8")
    os.replace(temporary, directory / MANIFEST)
