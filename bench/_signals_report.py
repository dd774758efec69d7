"""Markdown summary of bench/signals.py results."""

from __future__ import annotations

from typing import Any

BARS = [
    ("domain_accuracy", ">=", 0.80),
    ("jailbreak_auc", ">=", 0.97),
    ("jailbreak_benign_fpr", "<=", 0.03),
    ("pii_recall_min", ">=", 0.90),
    ("latency_p50_ms_all_signals", "<=", 12.0),
    ("latency_p99_ms_all_signals", "<=", 30.0),
    ("throughput_rps_c32", ">=", 200.0),
]


# the same bars, for the embeddings the signals serve (present when they are int8)
SERVING_BARS = [
    ("serving_domain_accuracy", ">=", 0.80),
    ("serving_jailbreak_auc", ">=", 0.97),
    ("serving_jailbreak_benign_fpr", "<=", 0.03),
]


def _verdict(value: float, op: str, bar: float) -> str:
    ok = value >= bar if op == ">=" else value <= bar
    return "met" if ok else "MISSED"


def _confusion(tables: dict[str, Any]) -> list[str]:
    labels = tables["labels"]
    short = [label[:6] for label in labels]
    lines = ["| true \\ predicted | " + " | ".join(short) + " |",
             "|---|" + "---:|" * len(labels)]  # fmt: skip
    for label, row in zip(labels, tables["confusion"], strict=True):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    return lines


def render(metrics: dict[str, float], quality: dict[str, Any]) -> str:
    lines = ["# Semantic signals", "", "## Bars", "", "| metric | value | bar | verdict |",
             "|---|---:|---|---|"]  # fmt: skip
    for key, op, bar in BARS + [b for b in SERVING_BARS if b[0] in metrics]:
        value = metrics[key]
        lines.append(f"| `{key}` | {value:.4g} | {op} {bar:g} | {_verdict(value, op, bar)} |")
    lines += ["", "All metrics (JSON has the same keys):", ""]
    lines += [f"- `{key}`: {value:.4g}" for key, value in sorted(metrics.items())]
    domain = quality["domain"]
    lines += ["", "## Domain (vllm_sr_domain_eval.jsonl, 261 questions, never trained on)", ""]
    lines += ["| category | accuracy |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in sorted(domain["tables"]["per_category"].items())]
    lines += ["", "Confusion matrix (rows: true label):", ""] + _confusion(domain["tables"])
    jailbreak = quality["jailbreak"]
    lines += ["", "## Jailbreak / prompt injection", "",
              "Held-out split: 25% of the safety corpus, stratified by source, seed 0. "
              f"Committed weights equal the seed-0 refit: {jailbreak['committed_weights_match']}.",
              "", "Leave-one-source-out AUC (trained without that source, tested on it vs "
              "held-out negatives):", "", "| held-out source | AUC |", "|---|---:|"]  # fmt: skip
    lines += [f"| {k} | {v:.3f} |" for k, v in jailbreak["tables"]["loso_auc"].items()]
    pii = quality["pii"]
    lines += ["", "## PII (presidio synthetic set, pattern policy, threshold 0.4)", "",
              "| entity | support | recall | precision |", "|---|---:|---:|---:|"]  # fmt: skip
    for entity, recall in pii["recall"].items():
        support, precision = pii["support"][entity], pii["precision"][entity]
        lines.append(f"| {entity} | {support} | {recall:.3f} | {precision:.3f} |")
    lines += ["", "## MT-bench embedding routes (5 hand-written examples per category)", "",
              "| category | accuracy |", "|---|---:|"]  # fmt: skip
    lines += [f"| {k} | {v:.2f} |" for k, v in quality["mtbench"]["per_category"].items()]
    load = metrics["load_average_1m_at_end"]
    served = "int8 activations" if metrics.get("embedding_int8_activations") else "fp32"
    lines += ["", "## Performance notes", "",
              f"MiniLM runs as the fused onnxruntime graph with {served} (`serving_*` metrics: "
              "the fp32-trained heads on those embeddings). 1-minute load average at the end: "
              f"{load:.1f}; on a shared machine latency and throughput are pessimistic.",
              ""]  # fmt: skip
    return "\n".join(lines) + "\n"
