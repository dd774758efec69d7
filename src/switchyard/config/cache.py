"""Response cache configuration: modes, backends, scoping and the category-aware policy."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from switchyard.config.base import StrictModel


class EmbeddedCacheBackendConfig(StrictModel):
    """In-process HNSW index per partition, made durable by a SQLite file."""

    type: Literal["embedded"] = "embedded"
    path: str = Field(
        default="cache/switchyard-cache.sqlite",
        description="SQLite file; empty string = memory only (lost on restart)",
    )
    max_entries: int = Field(default=100_000, gt=0)
    max_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    hnsw_m: int = Field(default=16, ge=4, le=64)
    hnsw_ef_construction: int = Field(default=100, ge=8)
    hnsw_ef_search: int = Field(default=48, ge=4)
    save_index: bool = Field(
        default=True,
        description="save the HNSW indexes next to the SQLite file at shutdown, so a restart "
        "loads them instead of rebuilding (about the vectors' size again on disk)",
    )


class PgvectorCacheBackendConfig(StrictModel):
    """A table in PostgreSQL with a pgvector HNSW index, shared by every gateway replica."""

    type: Literal["pgvector"]
    dsn: str = Field(min_length=1, description="postgresql://user:pass@host/db")
    table: str = Field(default="switchyard_cache", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=8, gt=0)
    timeout_s: float = Field(default=0.25, gt=0, description="per query; on expiry: bypass")
    max_entries: int = Field(default=1_000_000, gt=0)
    hnsw_ef_search: int = Field(default=40, ge=4)
    retry_after_s: float = Field(
        default=5.0, ge=0, description="after a connection failure, bypass this long"
    )


def _backend_type(value: Any) -> str:
    """`type:` selects the backend; omitted means the embedded one."""
    if isinstance(value, dict):
        return str(value.get("type", "embedded"))
    return str(getattr(value, "type", "embedded"))


CacheBackendConfig = Annotated[
    Annotated[EmbeddedCacheBackendConfig, Tag("embedded")]
    | Annotated[PgvectorCacheBackendConfig, Tag("pgvector")],
    Discriminator(_backend_type),
]


class CacheCategoryRule(StrictModel):
    """Overrides for requests whose decision name or signal labels match one of `match`."""

    match: list[str] = Field(min_length=1, description="decision names or signal labels")
    enabled: bool = True
    threshold: float | None = Field(
        default=None, ge=0, le=1, description="verifier score needed for a semantic hit"
    )
    min_similarity: float | None = Field(default=None, ge=-1, le=1)
    ttl_s: float | None = Field(default=None, gt=0)
    semantic: bool = True


class CacheConfig(StrictModel):
    enabled: bool = False
    mode: Literal["exact", "semantic", "exact_then_semantic"] = "exact_then_semantic"
    backend: CacheBackendConfig = Field(default_factory=EmbeddedCacheBackendConfig)
    scope: Literal["tenant", "shared"] = Field(
        default="tenant", description="shared: every tenant reads every entry (opt-in)"
    )
    ttl_s: float = Field(default=3600.0, gt=0)
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="verifier score needed for a semantic hit"
    )
    min_similarity: float = Field(
        default=0.80, ge=-1, le=1, description="cosine below which a candidate is not verified"
    )
    verifier: str = Field(
        default="builtin", description="'builtin', 'none' (cosine only) or a path to a .npz"
    )
    top_k: int = Field(default=4, ge=1, le=64)
    history_turns: int = Field(
        default=0, ge=0, description="earlier user/assistant turns included in the key"
    )
    cache_tools: bool = False
    cache_sampled: bool = Field(default=False, description="serve requests with temperature > 0")
    cache_multiple_choices: bool = Field(default=False, description="serve requests with n > 1")
    bypass_labels: list[str] = Field(
        default_factory=lambda: ["pii"], description="signal labels that disable caching"
    )
    categories: list[CacheCategoryRule] = Field(default_factory=list)
    max_response_bytes: int = Field(default=1024 * 1024, gt=0)
    admin_key: str | None = Field(default=None, description="key for the HTTP admin endpoint")
