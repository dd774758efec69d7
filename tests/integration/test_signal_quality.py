"""Quality guards of the bundled signal models on the shared evaluation data.

These read `../shared/data`: they fail (not skip) under CI=true when it is missing. The floors
are regression guards a little under the measured values (bench/results/signals.md has the
numbers and the issue's bars).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.requirements import SHARED_DATA, require_shared_data

from switchyard.embed.minilm import MiniLMEmbedder
from switchyard.signals import datasets
from switchyard.signals.domain import domain_text
from switchyard.signals.heads import ClassifierHead, bundled_weights
from switchyard.signals.pii_engine import load_analyzer
from switchyard.signals.semantic import SIGNAL_MAX_TOKENS, request_text

DATA = SHARED_DATA
PII_TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE")


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return require_shared_data(DATA)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder(max_length=SIGNAL_MAX_TOKENS)


def test_domain_accuracy_on_the_vllm_sr_eval_set(data_dir: Path, minilm: MiniLMEmbedder) -> None:
    rows = datasets.domain_eval_rows(data_dir)
    head = ClassifierHead.load(bundled_weights("domain.npz"))
    vectors = minilm.embed_batch([domain_text(row.text) for row in rows])
    predicted = np.array(head.labels)[head.probabilities(vectors).argmax(axis=1)]
    accuracy = float((predicted == np.array([row.label for row in rows])).mean())
    assert accuracy >= 0.65


def test_jailbreak_detects_the_vllm_sr_cases(data_dir: Path, minilm: MiniLMEmbedder) -> None:
    rows = list(datasets.read_jsonl(data_dir / "safety" / "vllm_sr_jailbreak_cases.jsonl"))
    head = ClassifierHead.load(bundled_weights("jailbreak.npz"))
    scores = head.probabilities(minilm.embed_batch([request_text(str(r["text"])) for r in rows]))
    assert float((scores >= head.meta["threshold"]).mean()) >= 0.65  # measured 0.72


def test_pii_recall_per_named_type(data_dir: Path) -> None:
    analyzer = load_analyzer(use_ner=False)
    found = {entity: [0, 0] for entity in PII_TYPES}
    for row in datasets.read_jsonl(data_dir / "safety" / "pii_synth.jsonl"):
        spans = [s for s in row["spans"] if s["entity_type"] in PII_TYPES]
        if not spans:
            continue
        findings = analyzer.analyse(str(row["text"]), list(PII_TYPES), 0.4)
        for span in spans:
            hit = any(
                f.entity == span["entity_type"] and f.start < span["end"] and span["start"] < f.end
                for f in findings
            )
            found[span["entity_type"]][0] += int(hit)
            found[span["entity_type"]][1] += 1
    recall = {entity: hits / total for entity, (hits, total) in found.items()}
    assert min(recall.values()) >= 0.9, recall
