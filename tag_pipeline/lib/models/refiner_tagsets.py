"""Tag sets as the refiner sees them: the heads' columns side by side, which pairs of tags
never go together in training (``Compatibility``), and the repair and statistics of decided
tag sets. numpy only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tag_pipeline.lib.models.labels import SOFTMAX, LabelSpace


def tag_columns(space: LabelSpace) -> list[tuple[str, int]]:
    """(head name, class index) of every tag column, heads side by side in model order."""
    return [(h.name, i) for h in space.heads for i in range(h.size)]


def concat_heads(per_head: Mapping[str, np.ndarray], space: LabelSpace) -> np.ndarray:
    missing = [h.name for h in space.heads if h.name not in per_head]
    if missing:
        raise ValueError(f"scores/targets lack head(s) {missing}; heads are {space.head_names}")
    return np.hstack([np.asarray(per_head[h.name], np.float32).reshape(-1, h.size)
                      for h in space.heads])


def split_heads(matrix: np.ndarray, space: LabelSpace) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for head in space.heads:
        out[head.name] = matrix[:, start:start + head.size]
        start += head.size
    return out


def known_cells(targets: Mapping[str, np.ndarray], space: LabelSpace) -> np.ndarray:
    """1 where a tag column's truth is known: sigmoid cells, and softmax cells of labeled rows."""
    parts = []
    for head in space.heads:
        y = np.asarray(targets[head.name])
        known = y.sum(axis=1, keepdims=True) > 0 if head.kind == SOFTMAX else np.ones((len(y), 1))
        parts.append(np.repeat(known.astype(np.float32), head.size, axis=1))
    return np.hstack(parts)


@dataclass(frozen=True)
class Compatibility:
    """Which tags cannot go together, learned from the training labels.

    Columns are the label space's tags, heads side by side in model order.

    Attributes:
        pairs: (m, 2) column indices ``a < b`` of the incompatible pairs (never together in
            training although at least ``min_expected`` products were expected to have both).
        single_valued: Column groups of the single-valued facets (at most one tag each).
        min_expected: The expected-count floor the pairs were chosen with.
    """

    pairs: np.ndarray
    single_valued: tuple[tuple[int, ...], ...]
    min_expected: float

    def matrix(self, n_columns: int) -> np.ndarray:
        """(K, K) boolean matrix, True for every incompatible pair of columns (both rules)."""
        out = np.zeros((n_columns, n_columns), dtype=bool)
        if len(self.pairs):
            out[self.pairs[:, 0], self.pairs[:, 1]] = True
        for group in self.single_valued:
            idx = np.asarray(group)
            out[np.ix_(idx, idx)] = True
        out |= out.T
        np.fill_diagonal(out, False)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain values (see ``from_dict``)."""
        return {"pairs": self.pairs.astype(int).tolist(),
                "single_valued": [list(g) for g in self.single_valued],
                "min_expected": self.min_expected}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Compatibility:
        """Rebuild from ``to_dict`` output."""
        pairs = np.asarray(data["pairs"], dtype=np.int64).reshape(-1, 2)
        return cls(pairs=pairs, single_valued=tuple(tuple(int(c) for c in g)
                                                    for g in data["single_valued"]),
                   min_expected=float(data["min_expected"]))


def build_compatibility(targets: Mapping[str, np.ndarray], space: LabelSpace,
                        min_expected: float = 5.0) -> Compatibility:
    """Incompatible pairs and single-valued facets from TRAINING targets (``encode_labels``).

    Args:
        targets: Training targets per head.
        space: The label space.
        min_expected: Fewest expected co-occurrences, under independence, for a pair never
            seen together to count as incompatible.
    """
    y = concat_heads(targets, space) > 0
    known = known_cells(targets, space) > 0
    yf, kf = y.astype(np.float64), known.astype(np.float64)
    together = yf.T @ yf
    both_known = kf.T @ kf
    rate = np.divide(yf.sum(axis=0), kf.sum(axis=0), out=np.zeros(y.shape[1]),
                     where=kf.sum(axis=0) > 0)
    expected = np.outer(rate, rate) * both_known
    columns = tag_columns(space)
    facet_of = [(name, space.head(name).classes[i].facet) for name, i in columns]
    groups: dict[tuple[str, str], list[int]] = {}
    for col, key in enumerate(facet_of):
        groups.setdefault(key, []).append(col)
    single = []
    for cols in groups.values():
        # single-valued: no training product has two tags of the facet
        if len(cols) >= 2 and y[:, cols].sum(axis=1).max(initial=0) <= 1:
            single.append(tuple(cols))
    same_facet = np.zeros_like(together, dtype=bool)
    for cols in single:
        same_facet[np.ix_(cols, cols)] = True
    candidate = (together == 0) & (expected >= min_expected) & ~same_facet
    a, b = np.nonzero(np.triu(candidate, k=1))
    return Compatibility(pairs=np.stack([a, b], axis=1).astype(np.int64),
                         single_valued=tuple(single), min_expected=float(min_expected))


def conflicts(binary: np.ndarray, incompatible: np.ndarray) -> np.ndarray:
    """Per row, whether it holds an incompatible pair (``binary`` is (n, K) 0/1)."""
    b = binary.astype(np.float32)
    return ((b @ incompatible.astype(np.float32)) * b).sum(axis=1) > 0


def tag_set_stats(decisions: Mapping[str, np.ndarray], space: LabelSpace,
                  compatibility: Compatibility) -> dict[str, float]:
    """Inconsistency rate, coverage and tags per product of a set of 0/1 decisions.

    Returns:
        ``inconsistency_rate``: share of products holding an incompatible pair (see the
        module docstring); ``coverage``: share of the label space's tags given to at least
        one product; ``tags_per_product``: mean number of distinct tags per product. All NaN
        for zero products.
    """
    binary = concat_heads(decisions, space) > 0
    if binary.shape[0] == 0:
        nan = float("nan")
        return {"inconsistency_rate": nan, "coverage": nan, "tags_per_product": nan}
    incompatible = compatibility.matrix(binary.shape[1])
    return {
        "inconsistency_rate": float(conflicts(binary, incompatible).mean()),
        "coverage": float(binary.any(axis=0).mean()) if binary.shape[1] else float("nan"),
        "tags_per_product": float(binary.sum(axis=1).mean()),
    }


def repair(decisions: Mapping[str, np.ndarray], scores: Mapping[str, np.ndarray],
           space: LabelSpace, compatibility: Compatibility) -> dict[str, np.ndarray]:
    """Drop tags until no incompatible pair is left, keeping a product's best-scored tags.

    A product's tags are visited best score first; a tag incompatible with one already kept
    is dropped. Products without a conflict are untouched.
    """
    binary = concat_heads(decisions, space).astype(np.uint8)
    if binary.shape[0] == 0:
        return {k: np.asarray(v, np.uint8).copy() for k, v in decisions.items()}
    s = concat_heads(scores, space)
    incompatible = compatibility.matrix(binary.shape[1])
    for row in np.flatnonzero(conflicts(binary, incompatible)):
        cols = np.flatnonzero(binary[row])
        kept: list[int] = []
        for col in cols[np.argsort(-s[row, cols], kind="stable")]:
            if not incompatible[col, kept].any():
                kept.append(int(col))
        binary[row] = 0
        binary[row, kept] = 1
    return split_heads(binary, space)
