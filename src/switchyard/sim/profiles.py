"""Replica profiles: the constants of an `EndpointModel`, loaded from YAML/JSON with sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator

from switchyard.config.base import StrictModel

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"


class Profile(StrictModel):
    """One replica: prefill speed, chunked-prefill budget, decode step cost, KV budget, power."""

    name: str
    block_tokens: int = Field(gt=0)
    kv_capacity_tokens: int = Field(gt=0)
    prefill_tokens_per_s: float = Field(gt=0)
    chunk_tokens: int = Field(gt=0)
    max_batch: int = Field(gt=0)
    decode_base_ms: float = Field(ge=0)
    decode_per_request_ms: float = Field(ge=0)
    decode_per_1k_context_ms: float = Field(ge=0)
    idle_watts: float = Field(ge=0)
    busy_watts: float = Field(ge=0)
    sources: dict[str, str]

    @model_validator(mode="after")
    def _every_constant_sourced(self) -> Profile:
        constants = set(type(self).model_fields) - {"name", "sources"}
        missing = sorted(c for c in constants if not self.sources.get(c, "").strip())
        if missing:
            raise ValueError(f"profile {self.name!r}: no source for {', '.join(missing)}")
        return self

    @property
    def kv_blocks(self) -> int:
        return self.kv_capacity_tokens // self.block_tokens

    def scaled_kv(self, factor: float) -> Profile:
        """The same profile with `factor` x KV capacity (a what-if, labelled in the name)."""
        sources = dict(self.sources)
        sources["kv_capacity_tokens"] = f"{factor:g} x ({self.sources['kv_capacity_tokens']})"
        return self.model_copy(
            update={
                "name": f"{self.name}-kv{factor:g}x",
                "kv_capacity_tokens": int(self.kv_capacity_tokens * factor),
                "sources": sources,
            }
        )


def load_profile(name_or_path: str | Path) -> Profile:
    """A bundled profile by name (`reference`) or a YAML/JSON file path."""
    path = Path(name_or_path)
    if not path.exists():
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    text = path.read_text(encoding="utf-8")
    data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return Profile.model_validate(data)
