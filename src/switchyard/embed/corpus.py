"""Offline embedding of whole corpora (training, evaluation, benchmarks), cached on disk.

The cache key is the sha256 of the model id, the max length and every text, so a cache file can
never be used for a different corpus. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from switchyard.embed.base import Vectors
from switchyard.embed.minilm import MiniLMEmbedder


def default_cache_dir() -> Path:
    """`bench/.work/embeddings` of a source checkout, else `~/.cache/switchyard/embeddings`."""
    repo_root = Path(__file__).resolve().parents[3]
    if (repo_root / "pyproject.toml").is_file() and (repo_root / "bench").is_dir():
        return repo_root / "bench" / ".work" / "embeddings"
    return Path.home() / ".cache" / "switchyard" / "embeddings"


def corpus_key(texts: Sequence[str], model_id: str, max_length: int) -> str:
    digest = hashlib.sha256(f"{model_id}|{max_length}|{len(texts)}".encode())
    for text in texts:
        digest.update(b"\x00")
        digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def embed_corpus(
    texts: Sequence[str],
    cache_dir: Path | None = None,
    batch_size: int = 64,
    progress: bool = False,
    embedder: MiniLMEmbedder | None = None,
    max_length: int = 256,
) -> Vectors:
    """Embed every text (float32 [n, dim], unit rows), reusing `<cache_dir>/<key>.npy` if present.

    Texts are embedded in length-sorted batches (less padding), then put back in input order.
    `max_length` (tokens) is ignored when an `embedder` is given (its own is used).
    """
    model = embedder
    directory = cache_dir if cache_dir is not None else default_cache_dir()
    model_id = model.model_id if model is not None else MiniLMEmbedder.model_id
    max_length = model.max_length if model is not None else max_length
    path = directory / f"{corpus_key(texts, model_id, max_length)}.npy"
    if path.is_file():
        cached: Vectors = np.load(path, allow_pickle=False).astype(np.float32, copy=False)
        if cached.shape[0] == len(texts):
            return cached
    if model is None:
        model = MiniLMEmbedder(max_length=max_length)
    vectors = _embed_sorted(model, texts, max(1, batch_size), progress)
    _save_atomically(path, vectors)
    return vectors


def _embed_sorted(
    model: MiniLMEmbedder, texts: Sequence[str], batch_size: int, progress: bool
) -> Vectors:
    vectors = np.zeros((len(texts), model.dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    starts: Iterable[int] = range(0, len(order), batch_size)
    if progress:
        from rich.progress import track

        starts = track(starts, description=f"embedding {len(texts)} texts")
    for start in starts:
        indices = order[start : start + batch_size]
        vectors[indices] = model.embed_batch([texts[index] for index in indices])
    return vectors


def _save_atomically(path: Path, vectors: Vectors) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.save(file, vectors, allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
