"""Quality of the trained heads on the embeddings the signals serve (int8 activations).

The heads are trained, and bench/_signals_quality.py evaluates them, on fp32 MiniLM embeddings;
the signals serve int8-activation embeddings (cosine ~0.99 to fp32) unless SIGNAL_PRECISION is
"fp32". This repeats the domain, jailbreak (same held-out split, committed head and threshold)
and MT-bench measurements with the serving embedder so that the report shows what runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from _signals_quality import mtbench_quality
from switchyard.embed.base import Vectors
from switchyard.embed.corpus import embed_corpus
from switchyard.embed.minilm import MiniLMEmbedder
from switchyard.embed.minilm_graph import Precision
from switchyard.signals import training
from switchyard.signals.heads import ClassifierHead, bundled_weights
from switchyard.signals.semantic import SIGNAL_MAX_TOKENS


def serving_quality(data_dir: Path, precision: Precision) -> dict[str, float]:
    """`serving_*` metrics; empty when the signals serve the fp32 embeddings (same numbers)."""
    from sklearn.model_selection import train_test_split

    model = MiniLMEmbedder(max_length=SIGNAL_MAX_TOKENS, threads=2, precision=precision)
    if model.graph != "fused-int8":
        return {}

    def embed(texts: list[str]) -> Vectors:
        return embed_corpus(texts, embedder=model)

    domain = training.evaluate_domain(
        ClassifierHead.load(bundled_weights("domain.npz")), data_dir, embed
    ).metrics
    corpus = training.safety_corpus(data_dir, 0, embed)
    _, held = train_test_split(
        np.arange(len(corpus.texts)), test_size=0.25, random_state=0, stratify=corpus.sources
    )
    jailbreak = ClassifierHead.load(bundled_weights("jailbreak.npz"))
    held_out = training._held_out_metrics(jailbreak, corpus.vectors, corpus, held)
    mtbench = mtbench_quality(data_dir, model)["metrics"]
    return {
        "serving_domain_accuracy": domain["domain_accuracy"],
        "serving_jailbreak_auc": held_out["jailbreak_auc"],
        "serving_jailbreak_benign_fpr": held_out["jailbreak_benign_fpr"],
        "serving_jailbreak_tpr": held_out["jailbreak_tpr"],
        "serving_mtbench_route_accuracy": mtbench["mtbench_route_accuracy"],
    }
