"""The paired bootstrap of tagger - baseline (``lib/models/comparison``)."""

from __future__ import annotations

import numpy as np
import pytest

from tag_pipeline.lib.models.comparison import (
    Difference,
    metric_of,
    paired_difference,
    paired_differences,
    product_counts,
)
from tag_pipeline.lib.models.labels import SIGMOID, SOFTMAX, Head, LabelSpace, TagClass
from tag_pipeline.lib.models.training import metrics_by_scope

SOFT = Head(name="category:type", kind=SOFTMAX, tag_type="category", facets=("type",),
            classes=tuple(TagClass("type", t, 10) for t in ("Shirts", "Shoes", "Ties")),
            n_labeled=30)
SIG = Head(name="style", kind=SIGMOID, tag_type="style", facets=("style",),
           classes=(TagClass("style", "Printed", 20), TagClass("style", "Solid", 30)),
           n_labeled=50)
SPACE = LabelSpace(heads=(SOFT, SIG), rare_tags=(), min_support=1, n_train=100)


def _catalog(n: int, right: float, seed: int) -> tuple[dict, dict, dict]:
    """Truth, scores and thresholds of ``n`` products: the softmax head's scores pick the
    true type with probability ``right``; a tenth of the products have no known type."""
    rng = np.random.default_rng(seed)
    true_type = rng.integers(0, 3, n)
    soft_truth = np.eye(3, dtype=np.uint8)[true_type]
    soft_truth[rng.random(n) < 0.1] = 0
    guess = np.where(rng.random(n) < right, true_type, rng.integers(0, 3, n))
    soft_scores = np.full((n, 3), 0.1, dtype=np.float32)
    soft_scores[np.arange(n), guess] = 0.8
    sig_truth = (rng.random((n, 2)) < 0.4).astype(np.uint8)
    sig_scores = np.where(rng.random((n, 2)) < right, sig_truth,
                          rng.random((n, 2)) < 0.5).astype(np.float32)
    truth = {SOFT.name: soft_truth, SIG.name: sig_truth}
    scores = {SOFT.name: soft_scores, SIG.name: sig_scores}
    thresholds = {SOFT.name: np.zeros(3, np.float32), SIG.name: np.full(2, 0.5, np.float32)}
    return truth, scores, thresholds


def _decisions(scores: dict, thresholds: dict) -> dict:
    from tag_pipeline.lib.models.scoring import apply_thresholds

    return apply_thresholds(scores, thresholds, SPACE, hierarchical=False)


def test_counts_of_a_hand_made_example():
    # four products; the third has no known type
    truth = {SOFT.name: np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]], np.uint8),
             SIG.name: np.array([[1, 0], [1, 1], [0, 0], [0, 1]], np.uint8)}
    preds = {SOFT.name: np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 1]], np.uint8),
             SIG.name: np.array([[1, 1], [0, 1], [1, 0], [0, 0]], np.uint8)}
    counts = product_counts(truth, preds, SPACE)
    # TP, FP, FN, right, known: a type is right when the given tags include it (the fourth
    # product's two tags do, at the cost of a false positive), no tag is wrong, and the
    # unknown type of the third product counts nowhere, while its style tag is a false
    # positive
    assert counts.tolist() == [[2, 1, 0, 1, 1], [1, 0, 2, 0, 1], [0, 1, 0, 0, 0],
                               [1, 1, 1, 1, 1]]
    assert metric_of(counts.sum(axis=0), "accuracy") == pytest.approx(2 / 3)
    assert metric_of(counts.sum(axis=0), "micro_f1") == pytest.approx(8 / (8 + 3 + 3))
    # the evaluation reads the same cells from the same decisions
    metrics = metrics_by_scope(truth, preds, {SOFT.name: np.full(3, 0.5), SIG.name:
                                              np.full(2, 0.5)}, SPACE, decisions=preds)
    assert metrics["all"]["accuracy"] == pytest.approx(2 / 3)
    assert metrics["all"]["micro_f1"] == pytest.approx(8 / 14)


def test_summed_counts_give_the_evaluation_s_micro_f1_and_accuracy():
    truth, scores, thresholds = _catalog(400, right=0.7, seed=1)
    metrics = metrics_by_scope(truth, scores, thresholds, SPACE, hierarchical=False)
    counts = product_counts(truth, _decisions(scores, thresholds), SPACE)
    assert counts.shape == (400, 5)
    assert metric_of(counts.sum(axis=0), "micro_f1") == pytest.approx(
        metrics["all"]["micro_f1"], abs=1e-12)
    assert metric_of(counts.sum(axis=0), "accuracy") == pytest.approx(
        metrics["all"]["accuracy"], abs=1e-12)
    # one head alone: the head's own figures
    soft = product_counts(truth, _decisions(scores, thresholds), SPACE, heads=[SOFT])
    assert metric_of(soft.sum(axis=0), "accuracy") == pytest.approx(
        metrics[f"head:{SOFT.name}"]["accuracy"], abs=1e-12)
    assert metric_of(soft.sum(axis=0), "micro_f1") == pytest.approx(
        metrics[f"head:{SOFT.name}"]["micro_f1"], abs=1e-12)


def test_a_clear_win_is_above_zero_a_coin_flip_straddles_it_and_a_model_ties_itself():
    truth, good_scores, thresholds = _catalog(1000, right=0.9, seed=2)
    _, bad_scores, _ = _catalog(1000, right=0.6, seed=2)
    good = product_counts(truth, _decisions(good_scores, thresholds), SPACE)
    bad = product_counts(truth, _decisions(bad_scores, thresholds), SPACE)

    win = paired_difference(good, bad, "accuracy")
    assert isinstance(win, Difference) and win.products == 1000 and win.resamples == 1000
    assert win.difference == pytest.approx(
        metric_of(good.sum(axis=0), "accuracy") - metric_of(bad.sum(axis=0), "accuracy"))
    assert 0 < win.low <= win.difference <= win.high
    loss = paired_difference(bad, good, "micro_f1")
    assert loss.low <= loss.difference <= loss.high < 0

    # two models that differ on a few products, each way: the interval holds zero
    close = good.copy()
    right = np.flatnonzero(good[:, 3] == 1)
    wrong = np.flatnonzero((good[:, 3] == 0) & (good[:, 4] == 1))
    close[right[:4], 3] = 0  # four cells this one gets wrong
    close[wrong[:3], 3] = 1  # three it gets right
    near = paired_difference(close, good, "accuracy")
    assert near.difference == pytest.approx(-1 / good[:, 4].sum())
    assert near.low < near.difference < 0 < near.high

    same = paired_difference(good, good, "micro_f1")
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)

    # seeded: the same counts give the same interval
    assert paired_difference(good, bad, "accuracy") == win
    assert "interval" in win.sentence() and "1,000 test products" in win.sentence()


def test_a_narrower_level_gives_a_narrower_interval_and_bad_inputs_name_the_fault():
    truth, scores, thresholds = _catalog(300, right=0.8, seed=3)
    _, other, _ = _catalog(300, right=0.7, seed=4)
    a = product_counts(truth, _decisions(scores, thresholds), SPACE)
    b = product_counts(truth, _decisions(other, thresholds), SPACE)
    wide = paired_difference(a, b, "accuracy", level=0.95)
    narrow = paired_difference(a, b, "accuracy", level=0.5)
    assert wide.low <= narrow.low <= narrow.high <= wide.high

    # the evaluation's conventions where nothing is given or due: micro-F1 0, accuracy NaN
    nothing = np.zeros(5)
    assert metric_of(nothing, "micro_f1") == 0.0 and np.isnan(metric_of(nothing, "accuracy"))
    with pytest.raises(ValueError, match="macro_f1"):
        paired_difference(a, b, "macro_f1")
    with pytest.raises(ValueError, match="same products"):
        paired_difference(a, b[:10], "accuracy")
    with pytest.raises(ValueError, match="level"):
        paired_difference(a, b, "accuracy", level=1.5)
    with pytest.raises(ValueError, match="same products in every pair"):
        paired_differences({"x": (a, b, "accuracy"), "y": (a[:10], b[:10], "accuracy")})
    assert paired_differences({}) == {}
    with pytest.raises(ValueError, match="at least one head"):
        product_counts(truth, _decisions(scores, thresholds), SPACE, heads=[])


def test_several_pairs_share_one_set_of_resamples():
    truth, scores, thresholds = _catalog(400, right=0.8, seed=7)
    _, other, _ = _catalog(400, right=0.7, seed=8)
    decided, other_decided = _decisions(scores, thresholds), _decisions(other, thresholds)
    heads = {h.name: (product_counts(truth, decided, SPACE, heads=[h]),
                      product_counts(truth, other_decided, SPACE, heads=[h]))
             for h in SPACE.heads}
    both = paired_differences({
        "all": (sum(a for a, _ in heads.values()), sum(b for _, b in heads.values()),
                "micro_f1"),
        SOFT.name: (*heads[SOFT.name], "accuracy")})
    # the counts of the heads add up to the product's
    assert both["all"] == paired_difference(product_counts(truth, decided, SPACE),
                                            product_counts(truth, other_decided, SPACE),
                                            "micro_f1")
    assert both[SOFT.name] == paired_difference(*heads[SOFT.name], "accuracy")


def test_resamples_drawn_in_chunks_give_the_same_interval(monkeypatch):
    from tag_pipeline.lib.models import comparison

    truth, scores, thresholds = _catalog(500, right=0.8, seed=5)
    _, other, _ = _catalog(500, right=0.75, seed=6)
    a = product_counts(truth, _decisions(scores, thresholds), SPACE)
    b = product_counts(truth, _decisions(other, thresholds), SPACE)
    whole = paired_difference(a, b, "micro_f1", resamples=300)
    monkeypatch.setattr(comparison, "_CELLS_PER_CHUNK", 500 * 7)  # 7 resamples a chunk
    # the generator draws the same resamples whether asked for 300 at once or 7 at a time
    assert paired_difference(a, b, "micro_f1", resamples=300) == whole
