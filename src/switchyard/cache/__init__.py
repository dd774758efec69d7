"""Response cache: exact and semantic, embedded (HNSW + SQLite) or shared (pgvector)."""

from switchyard.cache.base import Cache, CacheScope, LookupResult
from switchyard.cache.factory import build_cache
from switchyard.cache.semantic import ResponseCache

__all__ = ["Cache", "CacheScope", "LookupResult", "ResponseCache", "build_cache"]
