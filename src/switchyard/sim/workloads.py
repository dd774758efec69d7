"""Workloads: arrival times, prompt/output lengths and prefix blocks of every request.

Loaders: the Mooncake trace format (JSONL: timestamp ms, input_length, output_length, hash_ids of
512-token prefix blocks), the Azure LLM inference format (CSV: TIMESTAMP, ContextTokens,
GeneratedTokens; no prefix information), and synthetic generators (Poisson or bursty arrivals,
multi-turn sessions whose prompts grow on a shared prefix).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

# Block ids at or above this value are private (never shared); trace ids stay below it.
PRIVATE_BLOCK_BASE = 1 << 40


@dataclass(frozen=True)
class Workload:
    """Requests sorted by arrival. `has_prefix_info` says whether `blocks` may be shown to
    balancers (trace hash ids) or are private KV bookkeeping only (no sharing information)."""

    name: str
    arrival_s: np.ndarray  # float64, sorted, starting at 0
    input_tokens: np.ndarray  # int64
    output_tokens: np.ndarray  # int64
    blocks: tuple[tuple[int, ...], ...]
    has_prefix_info: bool

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1]) if len(self.arrival_s) else 0.0

    def scaled(self, rate_scale: float) -> Workload:
        """Arrivals compressed by `rate_scale` (2.0 = twice the request rate)."""
        return Workload(self.name, self.arrival_s / rate_scale, self.input_tokens,
                        self.output_tokens, self.blocks, self.has_prefix_info)

    def subset(self, mask: np.ndarray, name: str) -> Workload:
        indices = np.flatnonzero(mask)
        return Workload(name, self.arrival_s[indices], self.input_tokens[indices],
                        self.output_tokens[indices], tuple(self.blocks[i] for i in indices),
                        self.has_prefix_info)

    def head(self, count: int) -> Workload:
        return self.subset(np.arange(len(self)) < count, f"{self.name}[:{count}]")


def infinite_cache_hit_rate(workload: Workload, block_tokens: int = 512) -> float:
    """Upper bound on the prefix-cache hit rate: one cache of unbounded size that has seen every
    earlier request (cached tokens / prompt tokens, at least one token prefilled per request)."""
    if not workload.has_prefix_info:
        return 0.0
    seen: set[int] = set()
    cached = 0
    for blocks, tokens in zip(workload.blocks, workload.input_tokens.tolist(), strict=True):
        matched = 0
        for block in blocks:
            if block not in seen:
                break
            matched += 1
        cached += min(matched * block_tokens, tokens - 1)
        seen.update(blocks)
    total = int(workload.input_tokens.sum())
    return cached / total if total else 0.0


def private_blocks(index: int, input_tokens: int, block_tokens: int) -> tuple[int, ...]:
    count = max(1, math.ceil(input_tokens / block_tokens))
    base = PRIVATE_BLOCK_BASE + index * 4096
    return tuple(range(base, base + count))


def _finish(name: str, arrival: list[float], inputs: list[int], outputs: list[int],
            blocks: list[tuple[int, ...]], has_prefix_info: bool) -> Workload:
    order = np.argsort(np.asarray(arrival, dtype=np.float64), kind="stable")
    arrival_s = np.asarray(arrival, dtype=np.float64)[order]
    if len(arrival_s):
        arrival_s = arrival_s - arrival_s[0]
    return Workload(
        name=name,
        arrival_s=arrival_s,
        input_tokens=np.maximum(np.asarray(inputs, dtype=np.int64)[order], 1),
        output_tokens=np.maximum(np.asarray(outputs, dtype=np.int64)[order], 1),
        blocks=tuple(blocks[i] for i in order),
        has_prefix_info=has_prefix_info,
    )


def load_mooncake(path: Path) -> Workload:
    arrival: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    blocks: list[tuple[int, ...]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            arrival.append(row["timestamp"] / 1000.0)
            inputs.append(int(row["input_length"]))
            outputs.append(int(row["output_length"]))
            blocks.append(tuple(int(h) for h in row["hash_ids"]))
    return _finish(path.stem, arrival, inputs, outputs, blocks, has_prefix_info=True)


def _azure_time(text: str) -> float:
    stamp, _, fraction = text.strip().partition(".")
    base = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").timestamp()
    return base + (float(f"0.{fraction}") if fraction else 0.0)


def load_azure(path: Path, block_tokens: int = 512) -> Workload:
    arrival: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            arrival.append(_azure_time(row["TIMESTAMP"]))
            inputs.append(int(row["ContextTokens"]))
            outputs.append(int(row["GeneratedTokens"]))
    blocks = [private_blocks(i, n, block_tokens) for i, n in enumerate(inputs)]
    return _finish(path.stem, arrival, inputs, outputs, blocks, has_prefix_info=False)


def load_trace(path: Path) -> Workload:
    """Mooncake for .jsonl, Azure for .csv."""
    return load_azure(path) if path.suffix == ".csv" else load_mooncake(path)


def poisson_arrivals(rng: np.random.Generator, rate_per_s: float, count: int,
                     burstiness: float = 1.0) -> np.ndarray:
    """Gamma-renewal arrivals: burstiness 1 = Poisson, > 1 = burstier (CV^2 = burstiness)."""
    shape = 1.0 / burstiness
    gaps = rng.gamma(shape, 1.0 / (rate_per_s * shape), size=count)
    times: np.ndarray = np.cumsum(gaps) - gaps[0]
    return times


def synthetic_unique(count: int, rate_per_s: float, input_tokens: int, output_tokens: int,
                     seed: int = 0, burstiness: float = 1.0, block_tokens: int = 512) -> Workload:
    """Independent requests with unique prompts (no shareable prefix)."""
    rng = np.random.default_rng(seed)
    arrival = poisson_arrivals(rng, rate_per_s, count, burstiness).tolist()
    blocks = [private_blocks(i, input_tokens, block_tokens) for i in range(count)]
    return _finish("synthetic-unique", arrival, [input_tokens] * count, [output_tokens] * count,
                   blocks, has_prefix_info=True)


def synthetic_sessions(sessions: int, turns: int, rate_per_s: float, seed: int = 0,
                       system_blocks: int = 2, turn_blocks: int = 2, output_tokens: int = 200,
                       think_time_s: float = 30.0, block_tokens: int = 512) -> Workload:
    """Multi-turn sessions: every turn's prompt is the previous prompt plus new blocks, all
    sessions share `system_blocks` system-prompt blocks. Sessions start as a Poisson process."""
    rng = np.random.default_rng(seed)
    starts = poisson_arrivals(rng, rate_per_s / turns, sessions)
    next_id = system_blocks
    arrival: list[float] = []
    inputs: list[int] = []
    blocks: list[tuple[int, ...]] = []
    for session in range(sessions):
        prefix = list(range(system_blocks))
        time = float(starts[session])
        for _ in range(turns):
            prefix.extend(range(next_id, next_id + turn_blocks))
            next_id += turn_blocks
            arrival.append(time)
            inputs.append(len(prefix) * block_tokens)
            blocks.append(tuple(prefix))
            time += float(rng.exponential(think_time_s))
    outputs = [output_tokens] * len(arrival)
    return _finish("synthetic-sessions", arrival, inputs, outputs, blocks, has_prefix_info=True)
