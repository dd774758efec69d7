"""Quality measurements for bench/signals.py: domain, jailbreak, PII, MT-bench embedding routes."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from switchyard.embed.minilm import MiniLMEmbedder
from switchyard.signals import datasets, training
from switchyard.signals.embedding_route import build_route_index, route_scores
from switchyard.signals.heads import ClassifierHead, bundled_weights
from switchyard.signals.pii_engine import load_analyzer
from switchyard.signals.semantic import SIGNAL_MAX_TOKENS, request_text
from switchyard.signals.semantic_config import EmbeddingSignalConfig

PII_TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE")

# Five example prompts per MT-bench category, written for this benchmark (none is an MT-bench
# question): the route set an operator would write by hand.
MTBENCH_ROUTES: dict[str, list[str]] = {
    "writing": [
        "Write a short story about a lighthouse keeper who finds a message in a bottle.",
        "Compose a persuasive blog post about the benefits of cycling to work.",
        "Draft a heartfelt wedding toast for my best friend.",
        "Write a poem about autumn leaves falling in a quiet park.",
        "Create a product description for a handmade ceramic mug.",
    ],
    "roleplay": [
        "Pretend you are a pirate captain and greet your new crew.",
        "Act as a medieval innkeeper and describe today's specials to a traveller.",
        "Imagine you are a famous detective explaining how you solved a case.",
        "You are a tour guide in ancient Rome; welcome the visitors.",
        "Role-play as a customer support agent calming down an angry caller.",
    ],
    "reasoning": [
        "If all bloops are razzies and some razzies are lazzies, are some bloops lazzies?",
        "Three boxes are all labelled wrongly: apples, oranges, mixed. How few fruits must you "
        "pick to relabel them correctly?",
        "If 5 machines make 5 widgets in 5 minutes, how long do 100 machines take for 100?",
        "Which weighs more, a kilogram of feathers or a kilogram of steel, and why?",
        "Tom is taller than Ann and Ann is taller than Bob. Who is the shortest?",
    ],
    "math": [
        "Solve for x: 3x + 7 = 22.",
        "What is the derivative of x^3 * sin(x)?",
        "Find the area of a triangle with vertices (0,0), (4,0) and (0,3).",
        "How many ways can 5 people be seated in a row?",
        "Compute the sum of the first 100 positive integers.",
    ],
    "coding": [
        "Write a Python function that checks whether a string is a palindrome.",
        "Implement binary search in C++.",
        "Fix the bug in this JavaScript loop that never terminates.",
        "Write a SQL query that returns the top 5 customers by number of orders.",
        "Explain how to reverse a linked list and give the code.",
    ],
    "extraction": [
        "Extract all the dates mentioned in the following paragraph and list them.",
        "From the text below, pull out the company names and their CEOs as JSON.",
        "Identify the main characters and their roles in this passage.",
        "Put the key figures from this financial report into a table.",
        "List every product name and price that appears in this receipt.",
    ],
    "stem": [
        "Explain how photosynthesis converts light energy into chemical energy.",
        "What causes the seasons on Earth?",
        "Describe how vaccines train the immune system.",
        "How does a transistor work?",
        "Explain the difference between nuclear fission and fusion.",
    ],
    "humanities": [
        "Discuss the main causes of the French Revolution.",
        "What were the economic effects of the Industrial Revolution?",
        "Compare utilitarianism and Kantian ethics.",
        "Explain the significance of the Renaissance for European art.",
        "How did the printing press change society?",
    ],
}


def domain_quality(data_dir: Path) -> dict[str, Any]:
    head = ClassifierHead.load(bundled_weights("domain.npz"))
    embed = training._cached_embed(None, False)
    report = training.evaluate_domain(head, data_dir, embed)
    return {"metrics": report.metrics, "tables": report.tables, "meta": head.meta}


def jailbreak_quality(data_dir: Path) -> dict[str, Any]:
    """Refit with the training seed (deterministic) for held-out and leave-one-source-out
    numbers, check that the committed weights are that fit, and score the vLLM-SR cases."""
    report, _ = training.train_jailbreak(data_dir, seed=0)
    committed = ClassifierHead.load(bundled_weights("jailbreak.npz"))
    same = bool(np.allclose(committed.weights, report.head.weights, atol=1e-5))
    rows = list(datasets.read_jsonl(data_dir / "safety" / "vllm_sr_jailbreak_cases.jsonl"))
    texts = [request_text(str(row["text"])) for row in rows]
    vectors = training._cached_embed(None, False)(texts)
    threshold = float(committed.meta["threshold"])
    detected = float((committed.probabilities(vectors) >= threshold).mean())
    metrics = dict(report.metrics)
    metrics["jailbreak_vllm_sr_cases_detected"] = detected
    return {"metrics": metrics, "tables": report.tables, "committed_weights_match": same}


def pii_quality(data_dir: Path) -> dict[str, Any]:
    analyzer = load_analyzer(use_ner=False)
    rows = list(datasets.read_jsonl(data_dir / "safety" / "pii_synth.jsonl"))
    hits: Counter[str] = Counter()
    misses: Counter[str] = Counter()
    false_alarms: Counter[str] = Counter()
    for row in rows:
        found = analyzer.analyse(str(row["text"]), list(PII_TYPES), 0.4)
        gold = [s for s in row["spans"] if s["entity_type"] in PII_TYPES]
        for span in gold:
            matched = any(
                f.entity == span["entity_type"] and f.start < span["end"] and span["start"] < f.end
                for f in found
            )
            (hits if matched else misses)[span["entity_type"]] += 1
        for f in found:
            if not any(
                f.entity == s["entity_type"] and f.start < s["end"] and s["start"] < f.end
                for s in gold
            ):
                false_alarms[f.entity] += 1
    recall = {t: hits[t] / max(1, hits[t] + misses[t]) for t in PII_TYPES}
    precision = {t: hits[t] / max(1, hits[t] + false_alarms[t]) for t in PII_TYPES}
    support = {t: hits[t] + misses[t] for t in PII_TYPES}
    return {
        "metrics": {"pii_recall_min": min(recall.values())},
        "recall": recall,
        "precision": precision,
        "support": support,
    }


def mtbench_quality(data_dir: Path, model: MiniLMEmbedder) -> dict[str, Any]:
    config = EmbeddingSignalConfig.model_validate({
        "name": "mtbench", "type": "embedding", "threshold": -1.0, "exclusive": True,
        "routes": [{"name": n, "examples": e} for n, e in MTBENCH_ROUTES.items()],
    })  # fmt: skip
    index = build_route_index(config, model)
    rows = datasets.mtbench_rows(data_dir)
    vectors = model.embed_batch([request_text(row.text) for row in rows])
    names = list(MTBENCH_ROUTES)
    correct: Counter[str] = Counter()
    for row, vector in zip(rows, vectors, strict=True):
        positive, _ = route_scores(index, vector)
        correct[row.label] += names[int(np.argmax(positive))] == row.label
    per_category = {name: correct[name] / 10 for name in names}
    accuracy = sum(correct.values()) / len(rows)
    return {"metrics": {"mtbench_route_accuracy": accuracy}, "per_category": per_category}


def all_quality(data_dir: Path) -> dict[str, Any]:
    model = MiniLMEmbedder(max_length=SIGNAL_MAX_TOKENS)
    return {
        "domain": domain_quality(data_dir),
        "jailbreak": jailbreak_quality(data_dir),
        "pii": pii_quality(data_dir),
        "mtbench": mtbench_quality(data_dir, model),
    }


if __name__ == "__main__":  # quick look without the performance part
    print(
        json.dumps(
            asyncio.run(asyncio.to_thread(all_quality, datasets.default_data_dir())),
            indent=2,
            default=str,
        )
    )
