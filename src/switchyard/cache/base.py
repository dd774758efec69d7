"""The Cache contract the gateway calls, and the storage contract behind it.

The gateway calls `lookup(view, scope)` before routing (step 2 of the request flow) and
`store(view, scope, body)` after a response completed normally (step 6). Both never raise for
backend trouble: a broken backend turns into `status="bypass"` / `False` plus a counter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from switchyard.types import RequestView

Vector = npt.NDArray[np.float32]
LookupStatus = Literal["hit", "miss", "bypass"]
MatchKind = Literal["exact", "semantic"]


@dataclass(frozen=True, slots=True)
class CacheScope:
    """Who asks and what routing knows so far.

    `tenant` scopes every entry. `decision` and `labels` (signal labels) select the
    category rule; at lookup time they may still be empty (lookup runs before routing), and
    then the rule recorded with each stored entry still applies to that entry.
    `body` holds the request's generation parameters (temperature, n, max_tokens, ...).
    """

    tenant: str
    decision: str | None = None
    labels: tuple[str, ...] = ()
    body: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CacheKey:
    """`partition` hashes everything that must match exactly (tenant scope, model, system
    prompt, earlier turns, generation parameters); `exact` adds the normalised last user text;
    `query_text` is what gets embedded for semantic matching."""

    tenant: str
    partition: str
    exact: str
    query_text: str


@dataclass(frozen=True, slots=True)
class CacheEntry:
    tenant: str
    partition: str
    exact_key: str
    query_text: str
    vector: Vector | None
    response: bytes
    category: str
    min_score: float
    min_similarity: float
    semantic: bool
    created_at: float
    expires_at: float
    entry_id: int = 0

    @property
    def size_bytes(self) -> int:
        vector_bytes = 0 if self.vector is None else int(self.vector.nbytes)
        return len(self.response) + len(self.query_text.encode()) + vector_bytes + 256


@dataclass(frozen=True, slots=True)
class Candidate:
    entry: CacheEntry
    similarity: float
    exact: bool = False


@dataclass(frozen=True, slots=True)
class StoreQuery:
    """Find the exact entry (when `exact_key` is set) and/or the `k` nearest (when `vector`)."""

    tenant: str
    partition: str
    now: float
    exact_key: str | None = None
    vector: Vector | None = None
    k: int = 4


@dataclass(frozen=True, slots=True)
class StoreStats:
    entries: int
    bytes: int
    evictions: int
    expirations: int
    tenants: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LookupResult:
    status: LookupStatus
    response: bytes | None = None
    match: MatchKind | None = None
    similarity: float | None = None
    score: float | None = None
    reason: str = ""
    latency_ms: float = 0.0
    category: str = ""
    key: CacheKey | None = None
    vector: Vector | None = None

    @property
    def hit(self) -> bool:
        return self.status == "hit"

    def headers(self) -> dict[str, str]:
        """`x-switchyard-cache*` response headers describing this lookup."""
        out: dict[str, str] = {"x-switchyard-cache": self.status}
        if self.match is not None:
            out["x-switchyard-cache-match"] = self.match
        if self.similarity is not None:
            out["x-switchyard-cache-similarity"] = f"{self.similarity:.4f}"
        if self.score is not None:
            out["x-switchyard-cache-score"] = f"{self.score:.4f}"
        if self.status == "bypass" and self.reason:
            out["x-switchyard-cache-reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class CacheStats:
    lookups: int
    hits: int
    exact_hits: int
    semantic_hits: int
    misses: int
    bypasses: int
    stores: int
    store_skips: int
    backend_errors: int
    store: StoreStats | None


class Cache(Protocol):
    async def lookup(self, view: RequestView, scope: CacheScope) -> LookupResult: ...

    async def store(
        self, view: RequestView, scope: CacheScope, body: bytes,
        lookup: LookupResult | None = None,
    ) -> bool:
        """Store a complete non-streaming JSON body (use `replay.assemble_sse` for streams)."""
        ...

    async def stats(self) -> CacheStats: ...

    async def clear(self, tenant: str | None = None) -> int: ...

    async def aclose(self) -> None: ...


class CacheStore(Protocol):
    """Where entries live: embedded (HNSW + SQLite) or shared (PostgreSQL + pgvector)."""

    async def find(self, query: StoreQuery) -> Sequence[Candidate]: ...

    async def put(self, entry: CacheEntry) -> None: ...

    async def stats(self) -> StoreStats: ...

    async def clear(self, tenant: str | None = None) -> int: ...

    async def aclose(self) -> None: ...


class CacheBackendError(Exception):
    """The storage backend failed (connection, timeout); the cache is bypassed."""
