"""The domain head's training data excludes the evaluation questions (exact and near copies)."""

from __future__ import annotations

import numpy as np

from switchyard.signals.datasets import LabelledText
from switchyard.signals.training import balanced_accuracy, eval_overlap, without_eval_overlap


def test_training_rows_that_are_evaluation_questions_are_dropped() -> None:
    evaluation = [
        LabelledText("What is the marginal revenue of a monopolist?", "economics"),
        LabelledText("Which enzyme unwinds DNA at the replication fork during synthesis?", "bio"),
    ]
    rows = [
        LabelledText("What is the marginal revenue of a monopolist?\nA. 1\nB. 2\nAnswer:", "x"),
        LabelledText("what is the MARGINAL revenue of a monopolist", "x"),  # normalised equal
        LabelledText("Which enzyme unwinds the DNA at the replication fork during synthesis?", "x"),
        LabelledText("Which enzyme joins Okazaki fragments?", "keep"),
        LabelledText("What is the average revenue of a monopolist?", "keep"),  # Jaccard 7/9
    ]
    assert eval_overlap(rows, evaluation).tolist() == [True, True, True, False, False]
    assert [row.label for row in without_eval_overlap(rows, evaluation)] == ["keep", "keep"]


def test_balanced_accuracy_weights_every_category_equally() -> None:
    truth = np.array(["law"] * 8 + ["engineering"] * 2)
    predicted = np.array(["law"] * 10)
    assert balanced_accuracy(truth, predicted) == 0.5
