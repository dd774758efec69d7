"""Training and evaluation of the embedding classifiers behind `domain` and `jailbreak`.

Deterministic for a given seed: fixed stratified splits, deterministic solvers. Corpus
embeddings are cached (see `switchyard.embed.corpus`), so re-runs only refit the heads.
Evaluation files are never used for fitting or for choosing hyper-parameters.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from switchyard.embed.base import Vectors
from switchyard.embed.corpus import embed_corpus
from switchyard.signals import datasets
from switchyard.signals.domain import domain_text
from switchyard.signals.heads import ClassifierHead
from switchyard.signals.semantic import SIGNAL_MAX_TOKENS, request_text

Embed = Callable[[Sequence[str]], Vectors]
DOMAIN_C_GRID = (1.0, 4.0, 16.0)
OVERLAP_JACCARD = 0.8
_WORD = re.compile(r"[a-z0-9]+")
SAFETY_C_GRID = (1.0, 4.0, 16.0)
TARGET_BENIGN_FPR = 0.02
DOMAIN_PER_CLASS: int | None = None  # all MMLU questions (an int caps each category)
SAFETY_MMLU_POOL = 300  # per category: the MMLU questions benign negatives are drawn from


def capped_domain_rows(
    data_dir: Path, seed: int, per_class: int | None = DOMAIN_PER_CLASS
) -> list[datasets.LabelledText]:
    """A deterministic sample of at most `per_class` MMLU questions per category (file order)."""
    rows = datasets.domain_training_rows(data_dir)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in sorted({row.label for row in rows}):
        members = [i for i, row in enumerate(rows) if row.label == label]
        if per_class is not None and len(members) > per_class:
            members = sorted(rng.choice(members, size=per_class, replace=False).tolist())
        keep.extend(members)
    return [rows[i] for i in sorted(keep)]


def _cached_embed(cache_dir: Path | None, progress: bool) -> Embed:
    return lambda texts: embed_corpus(
        texts, cache_dir=cache_dir, progress=progress, max_length=SIGNAL_MAX_TOKENS
    )


@dataclass
class TrainingReport:
    head: ClassifierHead
    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)


def _logistic(c: float, seed: int, balanced: bool = True) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=c, max_iter=2000, class_weight="balanced" if balanced else None, random_state=seed
    )


def _head_from_logistic(model: Any, kind: str, meta: dict[str, Any]) -> ClassifierHead:
    weights = np.asarray(model.coef_, dtype=np.float32)
    bias = np.asarray(model.intercept_, dtype=np.float32)
    labels = tuple(str(label) for label in model.classes_)
    meta = {**meta, "max_tokens": SIGNAL_MAX_TOKENS}  # the token window of the embeddings
    if kind == "binary":
        labels = ("unsafe",)
    return ClassifierHead(labels, weights, bias, kind=kind, meta=meta)


# ----------------------------------------------------------------------------- domain


def train_domain(
    data_dir: Path, seed: int = 0, cache_dir: Path | None = None, progress: bool = False
) -> TrainingReport:
    """Softmax regression on MMLU question embeddings, class-balanced.

    C is chosen by balanced accuracy on a stratified 15% held-out split, then the head is
    refitted on every row. Questions that also occur in the evaluation file are dropped first
    (`eval_overlap`), so that the evaluation measures generalisation, not memorised text.
    """
    from sklearn.model_selection import train_test_split

    embed = _cached_embed(cache_dir, progress)
    all_rows = capped_domain_rows(data_dir, seed)
    keep = ~eval_overlap(all_rows, datasets.domain_eval_rows(data_dir))
    vectors = embed([domain_text(row.text) for row in all_rows])[keep]  # cached as one corpus
    labels = np.array([row.label for row, kept in zip(all_rows, keep, strict=True) if kept])
    train_idx, held_idx = train_test_split(
        np.arange(len(labels)), test_size=0.15, random_state=seed, stratify=labels
    )
    best: tuple[float, float] | None = None
    for c in DOMAIN_C_GRID:
        model = _logistic(c, seed).fit(vectors[train_idx], labels[train_idx])
        accuracy = balanced_accuracy(labels[held_idx], model.predict(vectors[held_idx]))
        if best is None or accuracy > best[0]:
            best = (accuracy, c)
    assert best is not None
    held_accuracy, chosen_c = best
    model = _logistic(chosen_c, seed).fit(vectors, labels)  # refit on every kept row
    meta = {
        "trained_on": "domains/mmlu_domains.jsonl.gz minus evaluation questions",
        "excluded_eval_overlap": int((~keep).sum()),
        "seed": seed,
        "C": chosen_c,
    }
    head = _head_from_logistic(model, "multiclass", meta)
    report = TrainingReport(head, {"domain_heldout_balanced_accuracy": held_accuracy})
    evaluation = evaluate_domain(head, data_dir, embed)
    report.metrics.update(evaluation.metrics)
    report.tables.update(evaluation.tables)
    return report


def balanced_accuracy(truth: npt.NDArray[np.str_], predicted: npt.NDArray[np.str_]) -> float:
    """Mean per-category accuracy: the evaluation file has about as many questions per category,
    the MMLU corpus does not (law and 'other' outnumber engineering twelve to one)."""
    return float(np.mean([np.mean(predicted[truth == c] == c) for c in np.unique(truth)]))


def _overlap_key(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def eval_overlap(
    rows: Sequence[datasets.LabelledText], eval_rows: Sequence[datasets.LabelledText]
) -> npt.NDArray[np.bool_]:
    """Which `rows` are (nearly) an evaluation question.

    A row counts when its text equals an evaluation text, when both are equal after lower-casing
    and dropping punctuation and spacing, or when their word sets have Jaccard similarity >=
    `OVERLAP_JACCARD` (a reworded copy). MMLU-Pro reuses MMLU questions, so training on them
    would make the evaluation partly measure memorisation.
    """
    eval_texts = [domain_text(row.text) for row in eval_rows]
    exact = set(eval_texts)
    normalised = {_overlap_key(text) for text in eval_texts}
    eval_words = [set(_overlap_key(text).split()) for text in eval_texts]
    by_word: dict[str, list[int]] = {}
    for index, words in enumerate(eval_words):
        for word in words:
            by_word.setdefault(word, []).append(index)

    def near(words: set[str]) -> bool:
        candidates = {i for word in words for i in by_word.get(word, ())}
        return any(
            len(words & eval_words[i]) >= OVERLAP_JACCARD * len(words | eval_words[i])
            for i in candidates
        )

    flags = []
    for row in rows:
        text = domain_text(row.text)
        key = _overlap_key(text)
        flags.append(text in exact or key in normalised or near(set(key.split())))
    return np.array(flags, dtype=np.bool_)


def without_eval_overlap(
    rows: Sequence[datasets.LabelledText], eval_rows: Sequence[datasets.LabelledText]
) -> list[datasets.LabelledText]:
    """`rows` minus those `eval_overlap` flags."""
    flags = eval_overlap(rows, eval_rows)
    return [row for row, flagged in zip(rows, flags, strict=True) if not flagged]


def evaluate_domain(head: ClassifierHead, data_dir: Path, embed: Embed) -> TrainingReport:
    """Accuracy, per-category accuracy and confusion matrix on `vllm_sr_domain_eval.jsonl`.

    Also the accuracy on the evaluation questions that do not occur in the MMLU file at all
    (`domain_accuracy_unseen`: neither the head nor MMLU has seen their text).
    """
    rows = datasets.domain_eval_rows(data_dir)
    vectors = embed([domain_text(row.text) for row in rows])
    predicted = [head.labels[i] for i in head.probabilities(vectors).argmax(axis=1)]
    truth = [row.label for row in rows]
    mmlu = datasets.domain_training_rows(data_dir)
    unseen = {id(row) for row in without_eval_overlap(rows, mmlu)}
    labels = sorted(set(truth) | set(head.labels))
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for actual, guess in zip(truth, predicted, strict=True):
        confusion[index[actual], index[guess]] += 1
    per_category = {
        label: float(confusion[i, i] / max(1, confusion[i].sum())) for label, i in index.items()
    }
    accuracy = float(np.trace(confusion) / max(1, len(rows)))
    hits = [t == p for row, t, p in zip(rows, truth, predicted, strict=True) if id(row) in unseen]
    metrics = {
        "domain_accuracy": accuracy,
        "domain_accuracy_unseen": float(np.mean(hits)) if hits else float("nan"),
        "domain_eval_unseen_questions": float(len(hits)),
    }
    tables = {"labels": labels, "confusion": confusion.tolist(), "per_category": per_category}
    return TrainingReport(head, metrics, tables)


# ----------------------------------------------------------------------------- jailbreak


@dataclass(frozen=True)
class SafetyCorpus:
    texts: list[str]
    unsafe: npt.NDArray[np.int64]
    sources: npt.NDArray[np.str_]
    vectors: Vectors


def safety_corpus(data_dir: Path, seed: int, embed: Embed, extra_benign: int = 800) -> SafetyCorpus:
    """Safety rows plus benign MMLU and routing prompts (harder, more varied negatives).

    Each group is embedded (and cached) on its own; MMLU negatives reuse the domain corpus.
    """
    rng = np.random.default_rng(seed)
    rows = datasets.safety_rows(data_dir)
    texts = [request_text(row.text) for row in rows]
    sources = [row.source for row in rows]
    parts = [embed(texts)]
    pool = capped_domain_rows(data_dir, seed, SAFETY_MMLU_POOL)
    mmlu_texts = [domain_text(row.text) for row in pool]
    picks = rng.choice(len(mmlu_texts), size=min(extra_benign, len(mmlu_texts)), replace=False)
    parts.append(embed(mmlu_texts)[picks])
    texts += [mmlu_texts[i] for i in picks]
    sources += ["benign_mmlu"] * len(picks)
    routing_file = data_dir / "routing" / "llmrouter9.train.jsonl.gz"
    routing = [request_text(str(row["prompt"])) for row in datasets.read_jsonl(routing_file)]
    picks = rng.choice(len(routing), size=min(extra_benign, len(routing)), replace=False)
    routing_texts = [routing[i] for i in picks]
    parts.append(embed(routing_texts))
    texts += routing_texts
    sources += ["benign_routing"] * len(picks)
    unsafe = [
        int(not source.startswith("benign") and source != "deepset_benign") for source in sources
    ]
    return SafetyCorpus(
        texts, np.array(unsafe, dtype=np.int64), np.array(sources), np.concatenate(parts)
    )


def _auc(labels: npt.NDArray[np.int64], scores: npt.NDArray[np.floating]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _choose_threshold(model_factory: Callable[[], Any], x: Vectors, y: Any, seed: int) -> float:
    """Threshold at the TARGET_BENIGN_FPR quantile of out-of-fold benign scores."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    scores = cross_val_predict(model_factory(), x, y, cv=folds, method="predict_proba")[:, 1]
    return float(np.quantile(scores[y == 0], 1.0 - TARGET_BENIGN_FPR))


def train_jailbreak(
    data_dir: Path, seed: int = 0, cache_dir: Path | None = None, progress: bool = False
) -> tuple[TrainingReport, ClassifierHead]:
    """Binary unsafe head (stage 1) and detail head (stage 2) with held-out and LOSO metrics."""
    from sklearn.model_selection import train_test_split

    corpus = safety_corpus(data_dir, seed, _cached_embed(cache_dir, progress))
    vectors = corpus.vectors
    train_idx, held_idx = train_test_split(
        np.arange(len(corpus.texts)), test_size=0.25, random_state=seed, stratify=corpus.sources
    )
    x, y = vectors[train_idx], corpus.unsafe[train_idx]
    chosen_c = _choose_c(x, y, seed)
    model = _logistic(chosen_c, seed).fit(x, y)
    threshold = _choose_threshold(lambda: _logistic(chosen_c, seed), x, y, seed)
    meta = {"threshold": threshold, "C": chosen_c, "seed": seed, "trained_on": "safety 75% split"}
    head = _head_from_logistic(model, "binary", meta)
    report = TrainingReport(head, _held_out_metrics(head, vectors, corpus, held_idx))
    report.metrics["jailbreak_threshold"] = threshold
    report.tables["loso_auc"] = _leave_one_source_out(vectors, corpus, train_idx, held_idx, seed)
    detail = _train_detail(vectors[train_idx], corpus.sources[train_idx], y, seed)
    return report, detail


def _choose_c(x: Vectors, y: Any, seed: int) -> float:
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    scored = [
        (float(cross_val_score(_logistic(c, seed), x, y, cv=folds, scoring="roc_auc").mean()), c)
        for c in SAFETY_C_GRID
    ]
    return max(scored)[1]


def _held_out_metrics(
    head: ClassifierHead, vectors: Vectors, corpus: SafetyCorpus, held_idx: Any
) -> dict[str, float]:
    scores = head.probabilities(vectors[held_idx])
    truth = corpus.unsafe[held_idx]
    sources = corpus.sources[held_idx]
    threshold = float(head.meta["threshold"])
    benign_prompts = np.char.startswith(sources.astype(str), "benign_")
    flagged = scores >= threshold
    return {
        "jailbreak_auc": _auc(truth, scores),
        "jailbreak_benign_fpr": float(flagged[benign_prompts].mean()),
        "jailbreak_all_negatives_fpr": float(flagged[truth == 0].mean()),
        "jailbreak_tpr": float(flagged[truth == 1].mean()),
    }


def _leave_one_source_out(
    vectors: Vectors, corpus: SafetyCorpus, train_idx: Any, held_idx: Any, seed: int
) -> dict[str, float]:
    """Train without one positive source entirely; AUC of that source vs held-out negatives."""
    results: dict[str, float] = {}
    held_negatives = held_idx[corpus.unsafe[held_idx] == 0]
    for source in datasets.SAFETY_SOURCES:
        keep = train_idx[corpus.sources[train_idx] != source]
        model = _logistic(4.0, seed).fit(vectors[keep], corpus.unsafe[keep])
        test = np.concatenate([np.flatnonzero(corpus.sources == source), held_negatives])
        scores = model.predict_proba(vectors[test])[:, 1]
        results[source] = _auc(corpus.unsafe[test], scores)
    return results


def _train_detail(x: Vectors, sources: Any, unsafe: Any, seed: int) -> ClassifierHead:
    positives = unsafe == 1
    categories = np.array([datasets.safety_category(str(s)) for s in sources[positives]])
    model = _logistic(4.0, seed).fit(x[positives], categories)
    return _head_from_logistic(model, "multiclass", {"seed": seed, "stage": "detail"})


def write_report_json(path: Path, metrics: dict[str, float], tables: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"metrics": metrics, "tables": tables}, indent=2, sort_keys=True)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(payload.encode()))
    else:
        path.write_text(payload + "\n")
