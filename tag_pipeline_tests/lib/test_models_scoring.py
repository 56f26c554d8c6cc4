"""Thresholds tuned on validation scores, decisions, tags and per-head evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from tag_pipeline.lib.models.labels import SIGMOID, SOFTMAX, Head, LabelSpace, TagClass
from tag_pipeline.lib.models.scoring import (
    apply_thresholds,
    evaluate_heads,
    scores_to_tags,
    tune_thresholds,
)

SPACE = LabelSpace(
    heads=(
        Head(name="category:articleType", kind=SOFTMAX, tag_type="category",
             facets=("articleType",), n_labeled=3,
             classes=(TagClass("articleType", "Shirts", 2), TagClass("articleType", "Shoes", 1))),
        Head(name="style", kind=SIGMOID, tag_type="style", facets=("style",), n_labeled=3,
             classes=(TagClass("style", "Printed", 3), TagClass("style", "Solid", 3))),
    ),
    rare_tags=(), min_support=1, n_train=4,
)


def test_sigmoid_thresholds_maximise_f1_per_tag():
    scores = {"category:articleType": np.array([[0.6, 0.4]] * 4),
              "style": np.array([[0.9, 0.3], [0.7, 0.3], [0.4, 0.3], [0.2, 0.3]])}
    truth = {"category:articleType": np.array([[1, 0]] * 4),
             "style": np.array([[1, 0], [1, 0], [0, 0], [1, 0]])}
    thr = tune_thresholds(scores, truth, SPACE, softmax_floor=0.3)
    # Printed: a threshold <= 0.2 keeps all 4 (TP 3, FP 1): F1 = 6/7; in (0.2, 0.4] 3 kept
    # (TP 2): 4/6; in (0.4, 0.7] 2 kept: 4/5; in (0.7, 0.9]: 2/4. Best 6/7; ties -> 0.2.
    assert thr["style"][0] == pytest.approx(0.2)
    # Solid has no validation positive: the neutral 0.5
    assert thr["style"][1] == pytest.approx(0.5)
    assert thr["category:articleType"].tolist() == [0.3, 0.3]


def test_decisions_and_tags():
    scores = {"category:articleType": np.array([[0.7, 0.3], [0.45, 0.55]]),
              "style": np.array([[0.9, 0.6], [0.1, 0.2]])}
    thr = {"category:articleType": np.array([0.6, 0.6]), "style": np.array([0.5, 0.7])}
    decisions = apply_thresholds(scores, thr, SPACE)
    # product 1's arg-max (0.55) is under the 0.6 floor: no category
    assert decisions["category:articleType"].tolist() == [[1, 0], [0, 0]]
    assert decisions["style"].tolist() == [[1, 0], [0, 0]]
    tags = scores_to_tags(scores, thr, SPACE)
    assert tags == [[("category", "articleType", "Shirts", 0.7),
                     ("style", "style", "Printed", 0.9)], []]


def test_unknown_softmax_rows_are_not_scored():
    truth = {"category:articleType": np.array([[1, 0], [0, 0]]),
             "style": np.array([[1, 0], [0, 1]])}
    pred = {"category:articleType": np.array([[1, 0], [0, 1]]),
            "style": np.array([[1, 0], [0, 1]])}
    scores = {"category:articleType": np.array([[0.8, 0.2], [0.1, 0.9]]),
              "style": np.array([[0.8, 0.1], [0.2, 0.7]])}
    result = evaluate_heads(truth, pred, scores, SPACE)
    # product 1 has no known category: its "Shoes" decision is neither right nor wrong
    assert result["category:articleType"]["n_samples"] == 1
    assert result["category:articleType"]["micro_precision"] == 1.0
    assert result["all"]["micro_precision"] == 1.0 and result["all"]["micro_recall"] == 1.0
    assert result["all"]["n_tags"] == 4
