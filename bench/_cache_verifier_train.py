"""Train the hit verifier on the tuning half of the QQP pairs (never the test half).

Rows: every labelled tuning pair (query side B, candidate side A) plus what a real lookup
meets besides the true match: the top-4 stored tuning questions above a cosine floor
(labelled by the same rule as the cache simulation: identical or labelled-duplicate text is
correct, anything else is not). Model: IDF table (tuning texts) → linear score over
[a*b, |a-b|] (logistic regression; the trees see its out-of-fold values) → gradient-boosted
trees over cosine + lexical features + linear score, exported to numpy arrays.
The threshold comes from a cache simulation on the tuning half with out-of-fold scores
(5 folds grouped by query), at a false-hit rate a little under 2%.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from _cache_quality import PairData, _relations
from switchyard.cache.key import normalise_text
from switchyard.cache.verifier import HitVerifier
from switchyard.cache.verifier_text import IdfTable, text_facts, text_features
from switchyard.cache.verifier_trees import TreeEnsemble

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
NEIGHBOUR_FLOOR = 0.75
TOP_K = 4
TREE_PARAMS: dict[str, Any] = {
    "max_iter": 200,
    "learning_rate": 0.1,
    "max_leaf_nodes": 7,
    "min_samples_leaf": 80,
    "l2_regularization": 1.0,
    "early_stopping": True,
    "validation_fraction": 0.15,
    "n_iter_no_change": 30,
    "random_state": 0,
}
LINEAR_C = 0.3


@dataclass
class Rows:
    query: Ints  # pair index of the query (side B)
    candidate: Ints  # pair index of the candidate (side A)
    label: Ints
    group: Ints  # position of the query in data.tune (folds are split by query)
    in_top_k: npt.NDArray[np.bool_]  # the candidate is among the query's top-k above the floor


def tuning_rows(data: PairData) -> Rows:
    tune = data.tune
    relation = _relations(data)
    sims = data.vb[tune] @ data.va[tune].T
    query: list[int] = []
    candidate: list[int] = []
    label: list[int] = []
    group: list[int] = []
    in_top: list[bool] = []
    for row, i in enumerate(tune):
        top = {
            int(c)
            for c in np.argpartition(-sims[row], TOP_K)[:TOP_K]
            if sims[row, c] >= NEIGHBOUR_FLOOR
        }
        query.append(int(i))
        candidate.append(int(i))
        label.append(int(data.label[i]))
        group.append(row)
        in_top.append(row in top)
        text = normalise_text(data.b[i])
        for col in sorted(top - {row}):
            j = int(tune[col])
            other = normalise_text(data.a[j])
            query.append(int(i))
            candidate.append(j)
            label.append(int(other == text or relation.get(frozenset((other, text))) == 1))
            group.append(row)
            in_top.append(True)
    return Rows(
        np.asarray(query),
        np.asarray(candidate),
        np.asarray(label),
        np.asarray(group),
        np.asarray(in_top),
    )


def base_features(data: PairData, rows: Rows, idf: IdfTable) -> tuple[Floats, Floats]:
    """(cosine + text features, [a*b, |a-b|]) for every row."""
    va = data.va[rows.candidate].astype(np.float64)
    vb = data.vb[rows.query].astype(np.float64)
    text = np.asarray(
        [
            text_features(text_facts(data.b[q]), text_facts(data.a[c]), idf)
            for q, c in zip(rows.query.tolist(), rows.candidate.tolist(), strict=True)
        ],
        dtype=np.float64,
    )
    cosine = (va * vb).sum(axis=1)
    return np.hstack([cosine[:, None], text]), np.hstack([va * vb, np.abs(va - vb)])


def _linear(x: Floats, y: Ints) -> LogisticRegression:
    return LogisticRegression(C=LINEAR_C, max_iter=500).fit(x, y)


def _out_of_fold_linear(x: Floats, y: Ints, groups: Ints, folds: int, seed: int) -> Floats:
    out = np.zeros(len(y))
    unique = np.unique(groups)
    for train_g, held_g in KFold(folds, shuffle=True, random_state=seed).split(unique):
        held = np.isin(groups, unique[held_g])
        out[held] = _linear(x[~held], y[~held]).decision_function(x[held])
        del train_g
    return out


def _fit(
    base: Floats, pair: Floats, y: Ints, groups: Ints
) -> tuple[LogisticRegression, HistGradientBoostingClassifier]:
    linear_oof = _out_of_fold_linear(pair, y, groups, 4, 1)
    trees = HistGradientBoostingClassifier(**TREE_PARAMS).fit(
        np.hstack([base, linear_oof[:, None]]), y
    )
    return _linear(pair, y), trees


def export_trees(model: HistGradientBoostingClassifier) -> TreeEnsemble:
    tables = []
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        tables.append(
            {
                "feature": nodes["feature_idx"],
                "threshold": nodes["num_threshold"],
                "left": nodes["left"].astype(np.int64),
                "right": nodes["right"].astype(np.int64),
                "value": nodes["value"],
                "is_leaf": nodes["is_leaf"],
                "depth": nodes["depth"],
            }
        )
    return TreeEnsemble.from_nodes(tables, float(np.ravel(model._baseline_prediction)[0]))


def simulated_threshold(
    data: PairData, rows: Rows, scores: Floats, cosine: Floats, floor: float, target: float
) -> tuple[float, float, float]:
    """Cache simulation on the tuning half (best candidate per query above the cosine floor):
    the lowest threshold whose false-hit rate is <= target → (threshold, dup rate, false)."""
    best: dict[int, tuple[float, int]] = {}
    usable = rows.in_top_k & (cosine >= floor)
    for q, s, correct in zip(
        rows.query[usable].tolist(),
        scores[usable].tolist(),
        rows.label[usable].tolist(),
        strict=True,
    ):
        if q not in best or s > best[q][0]:
            best[q] = (s, correct)
    labels = {int(i): int(data.label[i]) for i in data.tune}
    negatives = sum(1 for v in labels.values() if v == 0)
    positives = len(labels) - negatives
    ranked = sorted(((s, c, labels[q]) for q, (s, c) in best.items()), reverse=True)
    true_hits = false_hits = 0
    chosen = (1.0, 0.0, 0.0)
    for score, correct, label in ranked:
        true_hits += int(label == 1 and correct == 1)
        false_hits += int(label == 0 and correct == 0)
        if false_hits / negatives > target:
            break
        chosen = (score, true_hits / positives, false_hits / negatives)
    return chosen


def tpr_at_fpr(scores: Floats, labels: Ints, fpr: float = 0.02) -> float:
    negatives = np.sort(scores[labels == 0])[::-1]
    return float((scores[labels == 1] > negatives[int(fpr * len(negatives))]).mean())


def train_verifier(
    data: PairData, floor: float = 0.80, target_fpr: float = 0.017
) -> tuple[HitVerifier, dict[str, float]]:
    idf = IdfTable.learn([data.a[i] for i in data.tune] + [data.b[i] for i in data.tune])
    rows = tuning_rows(data)
    base, pair = base_features(data, rows, idf)
    y = rows.label
    neighbours = rows.query != rows.candidate
    out_of_fold = np.zeros(len(y))
    for train_q, held_q in KFold(5, shuffle=True, random_state=0).split(data.tune):
        held = np.isin(rows.group, held_q)
        train = ~held
        linear, trees = _fit(base[train], pair[train], y[train], rows.group[train])
        linear_score = linear.decision_function(pair[held])
        out_of_fold[held] = trees.predict_proba(np.hstack([base[held], linear_score[:, None]]))[
            :, 1
        ]
        del train_q
    threshold, cv_dup, cv_false = simulated_threshold(
        data, rows, out_of_fold, base[:, 0], floor, target_fpr
    )
    linear, trees = _fit(base, pair, y, rows.group)
    weights = linear.coef_[0].astype(np.float64)
    verifier = HitVerifier(
        idf, weights, float(linear.intercept_[0]), export_trees(trees), threshold
    )
    check = np.hstack([base[:200], verifier.linear_score(pair[:200])[:, None]])
    exported = verifier.trees.raw(check)
    if not np.allclose(exported, trees.decision_function(check), atol=1e-6):
        raise AssertionError("exported trees disagree with the fitted model")
    pairs = ~neighbours
    pair_cosine = base[pairs, 0]
    return verifier, {
        "rows": float(len(y)),
        "neighbour_rows": float(neighbours.sum()),
        "trees": float(len(verifier.trees.roots)),
        "tree_depth": float(verifier.trees.depth),
        "idf_stems": float(len(idf.values)),
        "target_false_hit_rate_cv": target_fpr,
        "cv_simulated_duplicate_hit_rate": cv_dup,
        "cv_simulated_false_hit_rate": cv_false,
        "cv_pair_tpr_at_2pct_fpr": tpr_at_fpr(out_of_fold[pairs], y[pairs]),
        "cv_cosine_pair_tpr_at_2pct_fpr": tpr_at_fpr(pair_cosine, y[pairs]),
    }
