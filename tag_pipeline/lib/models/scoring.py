"""From scores to tags: thresholds tuned on validation, decisions, tags and per-head metrics.

Numpy only, shared by the Keras tagger and the TF-IDF baseline (both give scores per head in
the same shapes).

Decisions per head kind:

- sigmoid heads: a tag is given when its score reaches its own threshold, tuned on the
  validation split to maximise that tag's F1 over a fixed grid (0.05, 0.10, ..., 0.95); the
  grid's coarseness keeps a tag with few validation examples from getting a threshold fitted
  to one or two scores. Ties go to the higher threshold (fewer false positives); a tag with no
  positive in the validation split keeps 0.5.
- softmax heads: the arg-max class is given when its score reaches the confidence floor
  (default 0, i.e. always); the "thresholds" of a softmax head are that floor per class.
- the softmax heads of a taxonomy (category levels, ``LabelSpace.taxonomies``) are decoded
  jointly: each product gets the valid path with the highest probability in the tree whose
  levels are the heads' scores renormalised over the children of the chosen parent, so its
  levels always form a path seen in training. The floor applies per level: a chosen class
  under its floor gives no tag at that level nor below.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tag_pipeline.lib.metrics import evaluate
from tag_pipeline.lib.models.labels import NO_CLASS, SIGMOID, SOFTMAX, LabelSpace, Taxonomy

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)
DEFAULT_THRESHOLD = 0.5
# added to every score before renormalising, so children that all score 0 share their
# parent's probability evenly instead of dividing 0 by 0
_SCORE_EPS = 1e-12


def best_thresholds(scores: np.ndarray, truth: np.ndarray, grid: np.ndarray) -> np.ndarray:
    truth = truth > 0
    best_f1 = np.full(truth.shape[1], -1.0)
    best = np.full(truth.shape[1], DEFAULT_THRESHOLD)
    for thr in grid:
        pred = scores >= thr
        tp = (pred & truth).sum(axis=0)
        denom = pred.sum(axis=0) + truth.sum(axis=0)
        f1 = np.divide(2.0 * tp, denom, out=np.zeros(len(tp)), where=denom > 0)
        better = f1 >= best_f1
        best_f1 = np.where(better, f1, best_f1)
        best = np.where(better, thr, best)
    return np.where(truth.any(axis=0), best, DEFAULT_THRESHOLD)


def tune_thresholds(scores: Mapping[str, np.ndarray], y_true: Mapping[str, np.ndarray],
                    space: LabelSpace, softmax_floor: float = 0.0,
                    grid: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-tag thresholds from VALIDATION scores and targets (never the test split).

    Args:
        scores: Scores per head for the validation products.
        y_true: Targets per head for the same products (``encode_labels``).
        space: The label space.
        softmax_floor: Minimum arg-max score for a softmax head to give a tag.
        grid: Candidate thresholds for sigmoid tags; defaults to ``THRESHOLD_GRID``.

    Returns:
        ``{head name: float array (head size,)}``.
    """
    grid = THRESHOLD_GRID if grid is None else np.asarray(grid, dtype=np.float64)
    thresholds = {}
    for head in space.heads:
        if head.kind == SOFTMAX:
            thresholds[head.name] = np.full(head.size, softmax_floor, dtype=np.float64)
        else:
            thresholds[head.name] = best_thresholds(np.asarray(scores[head.name]),
                                                     np.asarray(y_true[head.name]), grid)
    return thresholds


def _checked_paths(taxonomy: Taxonomy, space: LabelSpace) -> np.ndarray:
    """The taxonomy's paths as an int array (n paths, n levels), checked against the space."""
    heads = {h.name: h for h in space.heads}
    paths = np.asarray(taxonomy.paths, dtype=np.int64).reshape(len(taxonomy.paths), -1)
    for level, name in enumerate(taxonomy.heads):
        if name not in heads or heads[name].kind != SOFTMAX:
            raise ValueError(f"taxonomy {list(taxonomy.heads)} names {name!r}, which is not a "
                             f"softmax head of the label space (heads: {space.head_names})")
        if paths[:, level].max() >= heads[name].size:
            raise ValueError(f"taxonomy {list(taxonomy.heads)} has a path with class "
                             f"{int(paths[:, level].max())} of head {name!r}, which has "
                             f"{heads[name].size} classes")
    return paths


def _decode_taxonomy(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, np.ndarray],
                     taxonomy: Taxonomy, space: LabelSpace) -> dict[str, np.ndarray]:
    """Decisions of a taxonomy's heads: the most probable valid path per product."""
    paths = _checked_paths(taxonomy, space)
    level_scores = [np.asarray(scores[name], dtype=np.float64) + _SCORE_EPS
                    for name in taxonomy.heads]
    n = len(level_scores[0])
    log_p = np.zeros((n, len(paths)))
    for level, s in enumerate(level_scores):
        cls = paths[:, level]
        reach = cls >= 0
        if not reach.any():
            continue
        # a node is a path prefix; its children are the classes the valid paths take below it
        _, node = np.unique(paths[reach, :level], axis=0, return_inverse=True)
        node = node.reshape(-1)
        children = np.zeros((s.shape[1], int(node.max()) + 1))
        children[cls[reach], node] = 1.0
        totals = s @ children
        log_p[:, reach] += np.log(s[:, cls[reach]]) - np.log(totals[:, node])
    chosen = paths[log_p.argmax(axis=1)] if n else np.zeros((0, len(taxonomy.heads)), np.int64)
    rows = np.arange(n)
    alive = np.ones(n, dtype=bool)
    decisions = {}
    for level, name in enumerate(taxonomy.heads):
        s = np.asarray(scores[name])
        thr = np.asarray(thresholds[name])
        cls = chosen[:, level]
        has = cls != NO_CLASS
        alive[has] &= s[rows[has], cls[has]] >= thr[cls[has]]
        alive &= has
        out = np.zeros_like(s, dtype=np.uint8)
        out[rows[alive], cls[alive]] = 1
        decisions[name] = out
    return decisions


def apply_thresholds(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, np.ndarray],
                     space: LabelSpace, hierarchical: bool = True) -> dict[str, np.ndarray]:
    """0/1 decisions per head (uint8 arrays shaped like the scores).

    Args:
        scores: Scores per head.
        thresholds: Thresholds per head (``tune_thresholds``).
        space: The label space.
        hierarchical: Decode the heads of each of the space's taxonomies jointly (a valid
            path per product); when False every softmax head takes its own arg-max.
    """
    decisions = {}
    for head in space.heads:
        s = np.asarray(scores[head.name])
        thr = np.asarray(thresholds[head.name])
        if head.kind == SIGMOID:
            decisions[head.name] = (s >= thr).astype(np.uint8)
            continue
        out = np.zeros_like(s, dtype=np.uint8)
        if s.size:
            top = s.argmax(axis=1)
            rows = np.arange(len(s))
            keep = s[rows, top] >= thr[top]
            out[rows[keep], top[keep]] = 1
        decisions[head.name] = out
    if hierarchical:
        for taxonomy in space.taxonomies:
            decisions.update(_decode_taxonomy(scores, thresholds, taxonomy, space))
    return decisions


def path_validity(decisions: Mapping[str, np.ndarray], space: LabelSpace) -> float:
    """Share of products whose category tags form a valid path prefix in every taxonomy.

    A product's tags in a taxonomy are valid when its levels hold one tag each from the top
    down to some level, none below, and those classes begin a valid path. Products without a
    tag in any taxonomy head are not counted.

    Returns:
        The share in [0, 1]; NaN when no product has a tag in a taxonomy head (or the space has
        no taxonomy).
    """
    n = len(next(iter(decisions.values()))) if decisions else 0
    tagged = np.zeros(n, dtype=bool)
    valid = np.ones(n, dtype=bool)
    for taxonomy in space.taxonomies:
        paths = _checked_paths(taxonomy, space)
        given = []
        for name in taxonomy.heads:
            d = np.asarray(decisions[name]) > 0
            count = d.sum(axis=1)
            # -2: several tags at one level, never part of a path
            given.append(np.where(count == 1, d.argmax(axis=1), np.where(count == 0, NO_CLASS, -2)))
        codes = np.stack(given, axis=1)
        prefixes = np.unique(np.concatenate([
            np.where(np.arange(paths.shape[1]) < d, paths, NO_CLASS)
            for d in range(1, paths.shape[1] + 1)]), axis=0)
        prefixes = prefixes[prefixes[:, 0] >= 0]
        tagged |= (codes != NO_CLASS).any(axis=1)
        is_prefix = (codes[:, None, :] == prefixes[None, :, :]).all(axis=2).any(axis=1)
        valid &= is_prefix | (codes == NO_CLASS).all(axis=1)
    return float(valid[tagged].mean()) if tagged.any() else float("nan")


def given_tags(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, np.ndarray],
               space: LabelSpace, hierarchical: bool = True
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tags given, as parallel arrays ``(row, class, score)`` (see ``decided_tags``):
    ``scores`` through ``apply_thresholds`` (``hierarchical`` is passed on)."""
    decisions = apply_thresholds(scores, thresholds, space, hierarchical=hierarchical)
    return decided_tags(decisions, scores, space)


def decided_tags(decisions: Mapping[str, np.ndarray], scores: Mapping[str, np.ndarray],
                 space: LabelSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tags that 0/1 ``decisions`` give, as parallel arrays ``(row, class, score)``.

    ``class`` indexes the classes of all heads in model order (``space_classes``). Rows come
    in product order; within a product, heads in model order and best score first. The score
    is the head's own score of the class.
    """
    rows, classes, values, heads = [], [], [], []
    offset = 0
    for index, head in enumerate(space.heads):
        r, c = np.nonzero(decisions[head.name])
        rows.append(r)
        classes.append(c + offset)
        values.append(np.asarray(scores[head.name])[r, c])
        heads.append(np.full(len(r), index))
        offset += head.size
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    row, cls, value, head_index = (np.concatenate(a) for a in (rows, classes, values, heads))
    order = np.lexsort((-value, head_index, row))
    return row[order], cls[order], value[order]


def space_classes(space: LabelSpace) -> list[tuple[str, str, str]]:
    """(tag_type, facet, tag) of every class of every head, in model order."""
    return [(head.tag_type, cls.facet, cls.tag) for head in space.heads for cls in head.classes]


def scores_to_tags(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, np.ndarray],
                   space: LabelSpace, hierarchical: bool = True
                   ) -> list[list[tuple[str, str, str, float]]]:
    """Tags given to each product as (tag_type, facet, tag, score), heads in model order."""
    n = len(next(iter(scores.values()))) if scores else 0
    tags: list[list[tuple[str, str, str, float]]] = [[] for _ in range(n)]
    labels = space_classes(space)
    rows, classes, values = given_tags(scores, thresholds, space, hierarchical=hierarchical)
    for r, c, v in zip(rows.tolist(), classes.tolist(), values.tolist(), strict=True):
        tags[r].append((*labels[c], float(v)))
    return tags


def known_rows(y_true: Mapping[str, np.ndarray], space: LabelSpace) -> dict[str, np.ndarray]:
    """Rows whose truth is known per head: all rows of a sigmoid head, labeled softmax rows."""
    return {h.name: (np.asarray(y_true[h.name]).sum(axis=1) > 0) if h.kind == SOFTMAX
            else np.ones(len(y_true[h.name]), dtype=bool) for h in space.heads}


def evaluate_heads(y_true: Mapping[str, np.ndarray], y_pred: Mapping[str, np.ndarray],
                   scores: Mapping[str, np.ndarray], space: LabelSpace
                   ) -> dict[str, dict[str, float]]:
    """Metrics per head, and over all heads together under the key ``"all"``.

    A softmax head is scored only on products whose facet value is known (its truth row is
    not all zero). In ``"all"`` the heads' columns are side by side; the cells of unknown
    softmax rows are blanked (no truth, no decision, score -1) so they neither help nor hurt.
    """
    known = known_rows(y_true, space)
    per_head: dict[str, dict[str, float]] = {}
    truths, preds, all_scores = [], [], []
    for head in space.heads:
        mask = known[head.name]
        t = np.asarray(y_true[head.name]) > 0
        p = np.asarray(y_pred[head.name]) > 0
        s = np.asarray(scores[head.name], dtype=np.float64)
        per_head[head.name] = evaluate(t[mask], p[mask], s[mask])
        truths.append(t & mask[:, None])
        preds.append(p & mask[:, None])
        all_scores.append(np.where(mask[:, None], s, -1.0))
    if space.heads:
        per_head["all"] = evaluate(np.hstack(truths), np.hstack(preds), np.hstack(all_scores))
    return per_head
