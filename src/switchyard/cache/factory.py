"""Build the configured cache: store (embedded or pgvector), embedder, verifier."""

from __future__ import annotations

from pathlib import Path

from switchyard.cache.base import CacheStore
from switchyard.cache.semantic import ResponseCache
from switchyard.cache.verifier import BUILTIN_WEIGHTS, HitVerifier
from switchyard.config.cache import CacheConfig, EmbeddedCacheBackendConfig
from switchyard.embed.base import Embedder


def load_verifier(cfg: CacheConfig, config_dir: Path | None = None) -> HitVerifier | None:
    if cfg.verifier == "none" or cfg.mode == "exact":
        return None
    if cfg.verifier == "builtin":
        return HitVerifier.load(BUILTIN_WEIGHTS)
    path = Path(cfg.verifier)
    if not path.is_absolute() and config_dir is not None:
        path = config_dir / path
    return HitVerifier.load(path)


async def open_store(
    cfg: CacheConfig, dim: int, config_dir: Path | None = None, admin_only: bool = False
) -> CacheStore:
    """The configured store; `admin_only` opens the embedded one without search indexes."""
    backend = cfg.backend
    if isinstance(backend, EmbeddedCacheBackendConfig):
        from switchyard.cache.memory import MemoryStore

        if backend.path and not Path(backend.path).is_absolute() and config_dir is not None:
            backend = backend.model_copy(update={"path": str(config_dir / backend.path)})
        return await MemoryStore.open(backend, dim, admin_only=admin_only)
    from switchyard.cache.pgvector import PgvectorStore

    return await PgvectorStore.open(backend, dim)


async def build_cache(
    cfg: CacheConfig, embedder: Embedder | None, config_dir: Path | None = None
) -> ResponseCache:
    """Open the store and wire the cache. Never fails on an unreachable PostgreSQL."""
    dim = embedder.dim if embedder is not None else 384
    store = await open_store(cfg, dim, config_dir)
    return ResponseCache(cfg, store, embedder if cfg.mode != "exact" else None,
                         load_verifier(cfg, config_dir))
