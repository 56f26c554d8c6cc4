"""How sure a difference between two models on the same test products is: a paired bootstrap.

The gate compares the tagger with the in-run baseline on one test split. A difference of a few
products can go either way on another draw of products, so the evaluation also reports the
interval the difference falls in when the test products are resampled (with replacement, the
same resample for both models: the comparison is paired). The gate's rule stays "beat the
baseline"; the interval tells whoever reads the decision, or overrules it with ``promote``,
whether the win or the loss is more than the luck of the split.

Micro-F1 and accuracy add up over products (true and false positives and negatives; right and
known single-valued cells), so one resample is a weighted sum of per-product counts: 1,000
resamples of 5,000 products cost a matrix product, well under a second.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from tag_pipeline.lib.models.labels import SOFTMAX, Head, LabelSpace
from tag_pipeline.lib.models.scoring import known_rows

K = TypeVar("K")
# Per-product count columns.
TP, FP, FN, RIGHT, KNOWN = range(5)
# The metrics that add up over products, so a resample's value comes from summed counts.
METRICS = ("micro_f1", "accuracy")
RESAMPLES = 1000
LEVEL = 0.95
# Resamples drawn at once: their (resamples, products) weights stay under ~40 MB.
_CELLS_PER_CHUNK = 5_000_000


@dataclass(frozen=True)
class Difference:
    """``model - reference`` on ``metric``, and the interval of the paired bootstrap."""

    metric: str
    difference: float
    low: float
    high: float
    level: float
    resamples: int
    products: int

    def sentence(self) -> str:
        """E.g. ``difference +0.0023, 95% interval +0.0010 to +0.0036 (1,000 resamples of the
        3,831 test products)``."""
        return f"difference {self.difference:+.4f}, {self.interval()}"

    def interval(self) -> str:
        """E.g. ``95% interval +0.0010 to +0.0036 (1,000 resamples of the 3,831 test
        products)``."""
        return (f"{self.level:.0%} interval {self.low:+.4f} to {self.high:+.4f} "
                f"({self.resamples:,} resamples of the {self.products:,} test products)")


def product_counts(truth: Mapping[str, np.ndarray], preds: Mapping[str, np.ndarray],
                   space: LabelSpace, heads: Sequence[Head] | None = None) -> np.ndarray:
    """(products, 5) counts per product over ``heads`` (default: all of ``space``'s): true
    positives, false positives and false negatives of its tags, and its right and known
    single-valued cells.

    The same cells as ``training.metrics_by_scope``: a softmax head counts only where the
    product's value is known; a single-valued cell is right when the given tags include the
    value (no tag given is wrong).
    """
    heads = tuple(space.heads if heads is None else heads)
    if not heads:
        raise ValueError("product_counts needs at least one head")
    known_of = known_rows(truth, dataclasses.replace(space, heads=heads))
    counts = np.zeros((len(truth[heads[0].name]), 5), dtype=np.int64)
    for head in heads:
        mask = known_of[head.name][:, None]
        t = (np.asarray(truth[head.name]) > 0) & mask
        p = (np.asarray(preds[head.name]) > 0) & mask
        counts[:, TP] += (t & p).sum(axis=1)
        counts[:, FP] += (p & ~t).sum(axis=1)
        counts[:, FN] += (t & ~p).sum(axis=1)
        if head.kind == SOFTMAX:
            known = t.any(axis=1)
            counts[:, RIGHT] += (known & (t & p).any(axis=1))
            counts[:, KNOWN] += known
    return counts


def metric_of(counts: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` from summed counts (the last axis holds the 5 columns), by the evaluation's
    conventions (``lib/metrics.py``): micro-F1 is 0 where no tag is given or due; accuracy is
    NaN where no single-valued cell is known."""
    counts = np.asarray(counts, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "micro_f1":
            tp, fp, fn = counts[..., TP], counts[..., FP], counts[..., FN]
            return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        if metric == "accuracy":
            known = counts[..., KNOWN]
            return np.where(known > 0, counts[..., RIGHT] / known, np.nan)
    raise ValueError(f"no bootstrap for metric {metric!r}: it must be one of {METRICS}")


def paired_difference(model: np.ndarray, reference: np.ndarray, metric: str,
                      resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0
                      ) -> Difference:
    """``metric(model) - metric(reference)`` on the same products, with the percentile
    interval of ``resamples`` paired bootstrap resamples of the products (seeded: the same
    counts give the same interval)."""
    return paired_differences({metric: (model, reference, metric)}, resamples, level,
                              seed)[metric]


def paired_differences(pairs: Mapping[K, tuple[np.ndarray, np.ndarray, str]],
                       resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0
                       ) -> dict[K, Difference]:
    """``paired_difference`` for several (model counts, reference counts, metric) of the same
    products at once (overall and per facet, say): every pair is scored on the same resamples,
    which are drawn once."""
    if not pairs:
        return {}
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    arrays = {}
    for key, (model, reference, metric) in pairs.items():
        model, reference = np.asarray(model), np.asarray(reference)
        if model.shape != reference.shape or model.ndim != 2 or model.shape[1] != 5:
            raise ValueError(f"paired_difference needs two (products, 5) count arrays of the "
                             f"same products, got {model.shape} and {reference.shape} "
                             f"for {key!r}")
        metric_of(model.sum(axis=0), metric)  # an unknown metric fails before resampling
        arrays[key] = (model.astype(np.float64), reference.astype(np.float64), metric)
    sizes = {model.shape[0] for model, _, _ in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(f"paired_differences needs the same products in every pair, got "
                         f"{sorted(sizes)} products")
    n = sizes.pop()
    if n == 0:
        raise ValueError("paired_difference needs at least one product")
    rng = np.random.default_rng(seed)
    chunk = max(1, _CELLS_PER_CHUNK // n)
    parts: dict[K, list[np.ndarray]] = {key: [] for key in arrays}
    for start in range(0, resamples, chunk):
        # each row: how many times each product is drawn in one resample
        weights = rng.multinomial(n, np.full(n, 1.0 / n),
                                  size=min(chunk, resamples - start)).astype(np.float64)
        for key, (model, reference, metric) in arrays.items():
            parts[key].append(metric_of(weights @ model, metric)
                              - metric_of(weights @ reference, metric))
    tail = (1 - level) / 2
    out = {}
    for key, (model, reference, metric) in arrays.items():
        deltas = np.concatenate(parts[key])
        deltas = deltas[~np.isnan(deltas)]
        observed = float(metric_of(model.sum(axis=0), metric)
                         - metric_of(reference.sum(axis=0), metric))
        low, high = (np.quantile(deltas, [tail, 1 - tail]) if deltas.size
                     else (float("nan"), float("nan")))
        out[key] = Difference(metric, observed, float(low), float(high), level, resamples, n)
    return out
