"""Semantic-cache quality on the labelled question pairs: evaluation on the test part (pairwise
PR curve + a full cache simulation). Training lives in `_cache_verifier_train.py`. Used by
bench/cache.py."""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _cache_latency import LookupTableEmbedder  # noqa: E402
from switchyard.cache.base import CacheScope  # noqa: E402
from switchyard.cache.key import normalise_text  # noqa: E402
from switchyard.cache.memory import MemoryStore  # noqa: E402
from switchyard.cache.semantic import ResponseCache  # noqa: E402
from switchyard.cache.verifier import HitVerifier  # noqa: E402
from switchyard.config.cache import CacheConfig, EmbeddedCacheBackendConfig  # noqa: E402
from switchyard.types import ChatMessage, RequestView  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "cache" / "qqp_20k.jsonl.gz"
SPLIT_SEED = 0
Matrix = npt.NDArray[np.float32]


@dataclass
class PairData:
    a: list[str]
    b: list[str]
    label: npt.NDArray[np.int64]
    va: Matrix
    vb: Matrix
    tune: npt.NDArray[np.int64]
    test: npt.NDArray[np.int64]


def read_rows() -> list[dict[str, Any]]:
    """The labelled pairs: `a`, `b`, `duplicate`."""
    with gzip.open(DATA, "rt", encoding="utf-8") as file:
        return [json.loads(line) for line in file]


def split(count: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Row indexes of the tuning and the test half (every cache bench uses this split)."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(count)
    return perm[: count // 2], perm[count // 2 :]


def load_pairs() -> PairData:
    from switchyard.embed.corpus import embed_corpus

    rows = read_rows()
    a, b = [r["a"] for r in rows], [r["b"] for r in rows]
    vectors = embed_corpus(a + b, progress=True)
    tune, test = split(len(rows))
    return PairData(
        a,
        b,
        np.array([int(r["duplicate"]) for r in rows]),
        vectors[: len(rows)],
        vectors[len(rows) :],
        tune,
        test,
    )


def features(
    data: PairData, idx: npt.NDArray[np.int64], verifier: HitVerifier
) -> npt.NDArray[np.float64]:
    """Verifier feature rows of the labelled pairs `idx` (query side B, candidate side A)."""
    return np.vstack(
        [verifier.features(data.b[i], data.vb[i], [data.a[i]], data.va[i][None]) for i in idx]
    )


def threshold_at_fpr(scores: npt.NDArray[Any], labels: npt.NDArray[Any], fpr: float) -> float:
    negatives = np.sort(scores[labels == 0])[::-1]
    return float(negatives[int(np.floor(fpr * len(negatives)))]) + 1e-6


def hit_rate_at_fpr(scores: npt.NDArray[Any], labels: npt.NDArray[Any], fpr: float) -> float:
    """Share of duplicates scored at or above the threshold that lets `fpr` of the rest through."""
    return float((scores[labels == 1] >= threshold_at_fpr(scores, labels, fpr)).mean())


def pr_curve(
    scores: npt.NDArray[Any], labels: npt.NDArray[Any], points: int = 25
) -> list[dict[str, float]]:
    out = []
    for q in np.linspace(0.02, 0.98, points):
        thr = float(np.quantile(scores, q))
        hit = scores >= thr
        tp = int((hit & (labels == 1)).sum())
        out.append(
            {
                "threshold": thr,
                "precision": tp / max(1, int(hit.sum())),
                "recall": tp / max(1, int((labels == 1).sum())),
                "false_hit_rate": float(hit[labels == 0].mean()),
            }
        )
    return out


def _view(text: str) -> RequestView:
    return RequestView(request_id="q", model="m1", messages=(ChatMessage("user", text),))


async def simulate(
    data: PairData, cfg: CacheConfig, verifier: HitVerifier | None
) -> dict[str, float]:
    """Insert side A of every test pair, query with side B, score hits against the labels."""
    backend = EmbeddedCacheBackendConfig(path="", max_entries=10**6, max_bytes=2**40)
    table: dict[str, Matrix] = {}
    for i in data.test:
        table[data.a[i].strip()] = data.va[i]
        table[data.b[i].strip()] = data.vb[i]
    store = await MemoryStore.open(backend, data.va.shape[1])
    cache = ResponseCache(
        cfg.model_copy(update={"backend": backend}),
        store,
        LookupTableEmbedder(table) if cfg.mode != "exact" else None,
        verifier,
    )
    scope = CacheScope(tenant="bench")
    for i in data.test:
        await cache.store(_view(data.a[i]), scope, _body(data.a[i]))
    relation = _relations(data)
    true_hits = false_hits = wrong_entry = 0
    for i in data.test:
        result = await cache.lookup(_view(data.b[i]), scope)
        if not result.hit or result.response is None:
            continue
        served = orjson.loads(result.response)["choices"][0]["message"]["content"]
        query = normalise_text(data.b[i])
        # Correct: the served entry asks the identical question, or a pair labelled duplicate.
        # Anything else (labelled non-duplicate, or never labelled) counts as a false hit.
        correct = served == query or relation.get(frozenset((served, query))) == 1
        if data.label[i] == 1 and correct:
            true_hits += 1
        elif data.label[i] == 1:
            wrong_entry += 1
        elif not correct:
            false_hits += 1
    await cache.aclose()
    duplicates = int((data.label[data.test] == 1).sum())
    negatives = len(data.test) - duplicates
    return {
        "duplicate_hit_rate": true_hits / duplicates,
        "false_hit_rate": false_hits / negatives,
        "wrong_entry_hit_rate": wrong_entry / duplicates,
        "precision": true_hits / max(1, true_hits + false_hits + wrong_entry),
    }


def _relations(data: PairData) -> dict[frozenset[str], int]:
    """Every labelled pair of the whole file (both halves), by normalised texts."""
    out: dict[frozenset[str], int] = {}
    for a, b, label in zip(data.a, data.b, data.label.tolist(), strict=True):
        out[frozenset((normalise_text(a), normalise_text(b)))] = int(label)
    return out


def _body(question: str) -> bytes:
    answer = json.dumps(normalise_text(question))
    return (
        '{"object":"chat.completion","choices":[{"index":0,"finish_reason":"stop",'
        f'"message":{{"role":"assistant","content":{answer}}}}}]}}'
    ).encode()


def evaluate(
    data: PairData, verifier: HitVerifier, cosine_threshold: float, min_similarity: float
) -> dict[str, Any]:
    x_test = features(data, data.test, verifier)
    labels = data.label[data.test]
    verifier_scores = verifier.predict(x_test)
    cosine_scores = x_test[:, 0]
    base = CacheConfig(
        enabled=True, threshold=verifier.threshold, min_similarity=min_similarity, top_k=4
    )
    modes = {
        "exact": (base.model_copy(update={"mode": "exact"}), None),
        "cosine": (
            base.model_copy(
                update={"threshold": cosine_threshold, "min_similarity": cosine_threshold}
            ),
            None,
        ),
        "verifier": (base, verifier),
    }
    simulated = {name: asyncio.run(simulate(data, cfg, v)) for name, (cfg, v) in modes.items()}
    pairwise = {
        "verifier_false_hit_rate": float(
            (verifier_scores[labels == 0] >= verifier.threshold).mean()
        ),
        "verifier_duplicate_hit_rate": float(
            (verifier_scores[labels == 1] >= verifier.threshold).mean()
        ),
        "cosine_false_hit_rate": float((cosine_scores[labels == 0] >= cosine_threshold).mean()),
        "cosine_duplicate_hit_rate": float((cosine_scores[labels == 1] >= cosine_threshold).mean()),
        "verifier_tpr_at_2pct_fpr": hit_rate_at_fpr(verifier_scores, labels, 0.02),
        "cosine_tpr_at_2pct_fpr": hit_rate_at_fpr(cosine_scores, labels, 0.02),
    }
    return {
        "simulated": simulated,
        "pairwise": pairwise,
        "pr_verifier": pr_curve(verifier_scores, labels),
        "pr_cosine": pr_curve(cosine_scores, labels),
        "scores": (verifier_scores, cosine_scores, labels),
    }
