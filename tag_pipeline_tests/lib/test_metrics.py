"""Metrics against a hand-computed example and against sklearn where it has the same metric."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, ndcg_score, precision_recall_fscore_support

from tag_pipeline.lib.metrics import evaluate, ndcg_at_k, precision_at_k, precision_recall_f1

# 4 products x 5 tags. Tag 4 is never true nor predicted; product 3 has no true or predicted tag.
Y_TRUE = np.array([
    [1, 0, 1, 0, 0],
    [0, 1, 0, 0, 0],
    [1, 1, 0, 0, 0],
    [0, 0, 0, 0, 0],
])
Y_PRED = np.array([
    [1, 1, 0, 0, 0],
    [0, 1, 0, 0, 0],
    [1, 0, 0, 1, 0],
    [0, 0, 0, 0, 0],
])
SCORES = np.array([
    [0.9, 0.6, 0.4, 0.1, 0.05],
    [0.2, 0.8, 0.3, 0.1, 0.05],
    [0.7, 0.3, 0.2, 0.6, 0.1],
    [0.1, 0.2, 0.3, 0.4, 0.5],
])


def test_metrics_match_hand_computation():
    m = evaluate(Y_TRUE, Y_PRED, SCORES)
    # micro: TP = 3 (p0/t0, p1/t1, p2/t0); 5 predicted, 5 true -> P = R = F1 = 3/5
    assert m["micro_precision"] == pytest.approx(3 / 5)
    assert m["micro_recall"] == pytest.approx(3 / 5)
    assert m["micro_f1"] == pytest.approx(3 / 5)
    # per tag (P, R, F1): t0 (2/2, 2/2, 1), t1 (1/2, 1/2, 1/2), t2 never predicted (0, 0/1, 0),
    # t3 a false positive only (0/1, 0, 0); t4 has no true and no predicted instance: left out
    assert m["macro_precision"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert m["macro_recall"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert m["macro_f1"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    # samples F1 = 2 TP / (|true| + |pred|): p0 2/4, p1 2/2, p2 2/4; p3 (empty, empty) left out
    assert m["samples_f1"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    # P@k over p0-p2 (p3 has no true tag). Top-1: t0, t1, t0 -> all true
    assert m["p_at_1"] == pytest.approx(1.0)
    # top-3: p0 {t0, t1, t2} -> 2 true; p1 {t1, t2, t0} -> 1; p2 {t0, t3, t1} -> 2
    assert m["p_at_3"] == pytest.approx((2 / 3 + 1 / 3 + 2 / 3) / 3)
    # top-5 is every tag: 2/5, 1/5, 2/5
    assert m["p_at_5"] == pytest.approx((2 + 1 + 2) / 15)
    # NDCG@5: p0 hits at ranks 1 and 3 -> (1 + 1/log2 4) / (1 + 1/log2 3); p1 hit at rank 1 -> 1;
    # p2 hits at ranks 1 and 3 -> same as p0
    p0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert m["ndcg_at_5"] == pytest.approx((p0 + 1 + p0) / 3)
    assert p0 == pytest.approx(0.91972, abs=1e-5)
    assert m["n_samples"] == 4 and m["n_tags"] == 5


def test_metrics_agree_with_sklearn():
    m = precision_recall_f1(Y_TRUE, Y_PRED)
    micro = precision_recall_fscore_support(Y_TRUE, Y_PRED, average="micro", zero_division=0)
    assert (m["micro_precision"], m["micro_recall"], m["micro_f1"]) == pytest.approx(micro[:3])
    # sklearn's macro restricted to the tags with a true or predicted instance
    macro = precision_recall_fscore_support(Y_TRUE, Y_PRED, average="macro", labels=[0, 1, 2, 3],
                                            zero_division=0)
    assert (m["macro_precision"], m["macro_recall"], m["macro_f1"]) == pytest.approx(macro[:3])
    assert m["samples_f1"] == pytest.approx(
        f1_score(Y_TRUE[:3], Y_PRED[:3], average="samples", zero_division=0))
    assert ndcg_at_k(Y_TRUE, SCORES, 5) == pytest.approx(ndcg_score(Y_TRUE[:3], SCORES[:3], k=5))
    assert ndcg_at_k(Y_TRUE, SCORES, 2) == pytest.approx(ndcg_score(Y_TRUE[:3], SCORES[:3], k=2))


def test_precision_at_k_larger_than_the_tag_count_divides_by_the_tag_count():
    truth = np.array([[1, 0], [1, 1]])
    scores = np.array([[0.2, 0.9], [0.5, 0.4]])
    # k = 5 > 2 tags: p0 1/2, p1 2/2
    assert precision_at_k(truth, scores, 5) == pytest.approx(0.75)


def test_undefined_averages_are_nan_not_zero():
    empty = np.zeros((2, 3), dtype=int)
    m = evaluate(empty, empty, np.zeros((2, 3)))
    assert math.isnan(m["macro_f1"]) and math.isnan(m["samples_f1"])
    assert math.isnan(m["p_at_1"]) and math.isnan(m["ndcg_at_5"])
    assert m["micro_f1"] == 0.0


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="differ in shape"):
        evaluate(Y_TRUE, Y_PRED[:, :3], SCORES)
    with pytest.raises(ValueError, match="only 0 and 1"):
        precision_recall_f1(Y_TRUE * 2, Y_PRED)
    with pytest.raises(ValueError, match="2-D"):
        precision_recall_f1(Y_TRUE[0], Y_PRED[0])
