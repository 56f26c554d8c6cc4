"""Multi-label tagging metrics over binary decision and score matrices (numpy only).

Conventions, shared by every function here:

- ``y_true`` and ``y_pred`` are 0/1 matrices (products x tags), ``scores`` a real matrix of the
  same shape (higher means more likely).
- A precision, recall or F1 with a zero denominator (a tag that is never predicted, micro
  precision when nothing at all is predicted) is 0, as with sklearn's ``zero_division=0``.
- Macro averages run over the tags that have at least one true or predicted instance: a tag
  absent from both the truth and the predictions says nothing about the model (sklearn's macro
  would count it as 0). Samples-F1 likewise runs over samples with at least one true or
  predicted tag, and P@k / NDCG@k over samples with at least one true tag.
- When the set to average over is empty the metric is NaN (undefined), never a made-up 0.
- P@k divides by min(k, number of tags); ties in scores are broken by column order.
"""

from __future__ import annotations

import numpy as np


def _as_binary(name: str, matrix: np.ndarray) -> np.ndarray:
    arr = np.asarray(matrix)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix (products x tags), got shape {arr.shape}")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1")
    return arr.astype(bool)


def _check_shapes(**arrays: np.ndarray) -> None:
    shapes = {name: np.shape(a) for name, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"matrices differ in shape: {shapes}")


def _ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    return _ratio(2 * precision * recall, precision + recall)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def precision_recall_f1(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Micro and macro precision, recall and F1, and samples-F1."""
    truth, pred = _as_binary("y_true", y_true), _as_binary("y_pred", y_pred)
    _check_shapes(y_true=truth, y_pred=pred)
    tp = (truth & pred).sum(axis=0)
    n_pred = pred.sum(axis=0)
    n_true = truth.sum(axis=0)

    micro_p = float(_ratio(tp.sum(), n_pred.sum()))
    micro_r = float(_ratio(tp.sum(), n_true.sum()))
    active = (n_true + n_pred) > 0
    tag_p = _ratio(tp, n_pred)[active]
    tag_r = _ratio(tp, n_true)[active]
    # sklearn's macro F1 is the mean of per-tag F1, not the F1 of the mean P and R.
    tag_f1 = _f1(tag_p, tag_r)

    row_tp = (truth & pred).sum(axis=1)
    row_true, row_pred = truth.sum(axis=1), pred.sum(axis=1)
    scored = (row_true + row_pred) > 0
    row_f1 = _ratio(2 * row_tp, row_true + row_pred)[scored]
    return {
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "micro_f1": float(_f1(np.float64(micro_p), np.float64(micro_r))),
        "macro_precision": _mean(tag_p),
        "macro_recall": _mean(tag_r),
        "macro_f1": _mean(tag_f1),
        "samples_f1": _mean(row_f1),
    }


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    # a stable sort of the negated scores keeps the lower column first among equal scores
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def precision_at_k(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Mean share of true tags among each sample's ``k`` highest scores."""
    truth = _as_binary("y_true", y_true)
    scores = np.asarray(scores, dtype=np.float64)
    _check_shapes(y_true=truth, scores=scores)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    keep = truth.any(axis=1)
    truth, scores = truth[keep], scores[keep]
    k_eff = min(k, truth.shape[1])
    top = _top_k(scores, k_eff)
    hits = np.take_along_axis(truth, top, axis=1).sum(axis=1)
    return _mean(hits / k_eff)


def ndcg_at_k(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Mean NDCG@k with binary relevance: DCG = sum rel_i / log2(i + 1) over ranks i = 1..k."""
    truth = _as_binary("y_true", y_true)
    scores = np.asarray(scores, dtype=np.float64)
    _check_shapes(y_true=truth, scores=scores)
    keep = truth.any(axis=1)
    truth, scores = truth[keep], scores[keep]
    k_eff = min(k, truth.shape[1])
    discounts = 1.0 / np.log2(np.arange(2, k_eff + 2))
    gains = np.take_along_axis(truth, _top_k(scores, k_eff), axis=1)
    dcg = (gains * discounts).sum(axis=1)
    n_rel = np.minimum(truth.sum(axis=1), k_eff)
    idcg = np.cumsum(discounts)[n_rel - 1]
    return _mean(dcg / idcg)


def evaluate(y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray,
             ks: tuple[int, ...] = (1, 3, 5), ndcg_k: int = 5) -> dict[str, float]:
    """All metrics for one set of decisions and scores.

    Returns:
        micro/macro precision, recall and F1, samples_f1, ``p_at_<k>`` for each k and
        ``ndcg_at_<ndcg_k>``, plus ``n_samples`` and ``n_tags`` for context.
    """
    _check_shapes(y_true=np.asarray(y_true), y_pred=np.asarray(y_pred), scores=np.asarray(scores))
    result = precision_recall_f1(y_true, y_pred)
    for k in ks:
        result[f"p_at_{k}"] = precision_at_k(y_true, scores, k)
    result[f"ndcg_at_{ndcg_k}"] = ndcg_at_k(y_true, scores, ndcg_k)
    result["n_samples"] = float(np.shape(y_true)[0])
    result["n_tags"] = float(np.shape(y_true)[1])
    return result
