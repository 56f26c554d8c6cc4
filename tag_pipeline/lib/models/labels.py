"""The label space of the tagger: which heads exist, which tags each predicts, and encodings.

Heads are decided on the training split only:

- a facet in which no training product has more than one tag (``articleType``, ``gender``) is
  single-valued and gets its own softmax head named ``<tag_type>:<facet>``; a product without a
  tag in that facet has an all-zero row and sample weight 0 (its value is unknown, not "none");
- the other (multi-valued) facets of a tag type are merged into one sigmoid head named
  ``<tag_type>``, whose columns are (facet, tag) pairs; there an absent tag is a negative;
- a single-valued facet left with one supported tag cannot be a softmax, so that tag joins the
  sigmoid head of its tag type;
- tags carried by fewer than ``min_support`` training products are listed in
  ``LabelSpace.rare_tags`` and belong to no head.

Tags that occur only outside the training split are unknown to the space; ``encode_labels``
leaves them out (the tagger cannot predict them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

SOFTMAX = "softmax"
SIGMOID = "sigmoid"
TAG_TYPES = ("category", "attribute", "scene", "style")
LABEL_COLUMNS = ("product_id", "tag", "tag_type", "facet")


@dataclass(frozen=True)
class TagClass:
    """One output column of a head: a tag of a facet and its training support."""

    facet: str
    tag: str
    support: int


@dataclass(frozen=True)
class RareTag:
    """A tag left out of every head because too few training products carry it."""

    tag: str
    tag_type: str
    facet: str
    support: int


@dataclass(frozen=True)
class Head:
    """One model output: a softmax over one facet or a sigmoid over a tag type's facets."""

    name: str
    kind: str
    tag_type: str
    facets: tuple[str, ...]
    classes: tuple[TagClass, ...]
    n_labeled: int

    @property
    def output_name(self) -> str:
        """The head name made safe for Keras layer names and output keys."""
        return output_name(self.name)

    @property
    def size(self) -> int:
        """Number of output columns."""
        return len(self.classes)


@dataclass(frozen=True)
class LabelSpace:
    """Heads, their classes and the rare tags left out, as decided on the training split."""

    heads: tuple[Head, ...]
    rare_tags: tuple[RareTag, ...]
    min_support: int
    n_train: int

    @property
    def head_names(self) -> list[str]:
        """Head names in model order."""
        return [h.name for h in self.heads]

    def head(self, name: str) -> Head:
        """The head called ``name``."""
        for h in self.heads:
            if h.name == name:
                return h
        raise KeyError(f"no head {name!r} in the label space; heads are {self.head_names}")

    def to_json(self) -> str:
        """Serialise to a JSON string (see ``from_json``)."""
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> LabelSpace:
        """Rebuild a label space written by ``to_json``."""
        data = json.loads(text)
        heads = tuple(
            Head(name=h["name"], kind=h["kind"], tag_type=h["tag_type"],
                 facets=tuple(h["facets"]), n_labeled=int(h["n_labeled"]),
                 classes=tuple(TagClass(**c) for c in h["classes"]))
            for h in data["heads"]
        )
        rare = tuple(RareTag(**r) for r in data["rare_tags"])
        return cls(heads=heads, rare_tags=rare, min_support=int(data["min_support"]),
                   n_train=int(data["n_train"]))


def output_name(head_name: str) -> str:
    """Keras-safe name of a head: anything but letters, digits and '_' becomes '_'."""
    return re.sub(r"[^0-9A-Za-z_]+", "_", head_name)


def _check_labels(labels: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise ValueError(f"labels frame lacks column(s) {missing}; has {labels.columns}")
    frame = labels.select(LABEL_COLUMNS).unique()
    bad_types = sorted(set(frame["tag_type"].unique().to_list()) - set(TAG_TYPES))
    if bad_types:
        raise ValueError(f"labels have unknown tag_type value(s) {bad_types}; "
                         f"expected one of {TAG_TYPES}")
    if frame.select(pl.any_horizontal(pl.all().is_null()).any()).item():
        raise ValueError("labels have null product_id, tag, tag_type or facet values")
    return frame


def build_label_space(labels: pl.DataFrame, train_ids: Iterable[str] | pl.Series,
                      min_support: int = 3) -> LabelSpace:
    """Decide the heads from the labels of the training products.

    Args:
        labels: Frame with product_id, tag, tag_type and facet (other columns are ignored).
        train_ids: Ids of the products in the training split (with or without labels).
        min_support: Fewest training products a tag needs to get an output column.

    Returns:
        The label space; heads are ordered softmax heads first, then sigmoid heads, each by
        tag type and facet.
    """
    if min_support < 1:
        raise ValueError(f"min_support must be at least 1, got {min_support}")
    ids = pl.Series("product_id", list(train_ids), dtype=pl.Utf8).unique()
    train = _check_labels(labels).filter(pl.col("product_id").is_in(ids.implode()))

    per_product = train.group_by("tag_type", "facet", "product_id").len()
    facet_max = per_product.group_by("tag_type", "facet").agg(pl.col("len").max().alias("max"))
    single = {(r["tag_type"], r["facet"]) for r in facet_max.iter_rows(named=True)
              if r["max"] <= 1}
    support = (train.group_by("tag_type", "facet", "tag")
               .agg(pl.col("product_id").n_unique().alias("support"))
               .sort("tag_type", "facet", "tag"))
    supported = support.filter(pl.col("support") >= min_support)
    rare = support.filter(pl.col("support") < min_support).sort(
        "tag_type", "facet", pl.col("support"), "tag", descending=[False, False, True, False])

    softmax_heads: list[Head] = []
    pooled: dict[str, list[TagClass]] = {}
    for (tag_type, facet), group in supported.group_by("tag_type", "facet", maintain_order=True):
        classes = tuple(TagClass(facet=facet, tag=t, support=int(s))
                        for t, s in group.select("tag", "support").iter_rows())
        if (tag_type, facet) in single and len(classes) >= 2:
            softmax_heads.append(Head(name=f"{tag_type}:{facet}", kind=SOFTMAX,
                                      tag_type=tag_type, facets=(facet,), classes=classes,
                                      n_labeled=sum(c.support for c in classes)))
        else:
            pooled.setdefault(tag_type, []).extend(classes)

    sigmoid_heads = []
    for tag_type in sorted(pooled):
        classes = tuple(pooled[tag_type])
        kept = pl.DataFrame({"facet": [c.facet for c in classes],
                             "tag": [c.tag for c in classes]}, schema={"facet": pl.Utf8,
                                                                      "tag": pl.Utf8})
        n_labeled = (train.filter(pl.col("tag_type") == tag_type)
                     .join(kept, on=["facet", "tag"], how="semi")["product_id"].n_unique())
        sigmoid_heads.append(Head(name=tag_type, kind=SIGMOID, tag_type=tag_type,
                                  facets=tuple(sorted({c.facet for c in classes})),
                                  classes=classes, n_labeled=int(n_labeled)))
    heads = tuple(sorted(softmax_heads, key=lambda h: (h.tag_type, h.name))) + tuple(sigmoid_heads)
    outputs = [h.output_name for h in heads]
    if len(set(outputs)) != len(outputs):
        raise ValueError(f"head names {[h.name for h in heads]} collide once made Keras-safe")
    rare_tags = tuple(RareTag(tag=r["tag"], tag_type=r["tag_type"], facet=r["facet"],
                              support=int(r["support"])) for r in rare.iter_rows(named=True))
    return LabelSpace(heads=heads, rare_tags=rare_tags, min_support=min_support,
                      n_train=ids.len())


def _class_index(space: LabelSpace) -> pl.DataFrame:
    rows = [(h.name, h.tag_type, c.facet, c.tag, i)
            for h in space.heads for i, c in enumerate(h.classes)]
    return pl.DataFrame(rows, schema={"head": pl.Utf8, "tag_type": pl.Utf8, "facet": pl.Utf8,
                                      "tag": pl.Utf8, "col": pl.Int64}, orient="row")


def encode_labels(labels: pl.DataFrame, product_ids: Sequence[str] | pl.Series,
                  space: LabelSpace) -> dict[str, np.ndarray]:
    """Targets per head for the given products, rows in the order of ``product_ids``.

    Softmax heads get one-hot rows (all zero when the product has no known tag in the facet;
    give those rows weight 0, see ``sample_weights``); sigmoid heads get multi-hot rows.
    Labels of tags outside the space (rare, or never seen in training) are left out.

    Returns:
        ``{head name: float32 array (n_products, head size)}``.
    """
    ids = pl.Series("product_id", list(product_ids), dtype=pl.Utf8)
    if ids.is_duplicated().any():
        raise ValueError(f"product_ids has duplicates, e.g. {ids.filter(ids.is_duplicated())[0]!r}")
    rows = pl.DataFrame({"product_id": ids, "row": np.arange(ids.len(), dtype=np.int64)})
    hits = (_check_labels(labels)
            .join(rows, on="product_id", how="inner")
            .join(_class_index(space), on=["tag_type", "facet", "tag"], how="inner"))
    encoded = {}
    for head in space.heads:
        y = np.zeros((ids.len(), head.size), dtype=np.float32)
        part = hits.filter(pl.col("head") == head.name)
        y[part["row"].to_numpy(), part["col"].to_numpy()] = 1.0
        encoded[head.name] = y
    return encoded


def sample_weights(encoded: Mapping[str, np.ndarray], space: LabelSpace,
                   class_weight_power: float = 0.5) -> dict[str, np.ndarray]:
    """Per-row loss weights: masks for unknown softmax rows, tempered class weights.

    A softmax row weighs ``(n_labeled / (K * support_c)) ** class_weight_power`` for its class
    ``c`` (``power=1`` is sklearn's "balanced", 0 is unweighted; 0.5 keeps a tag with 3 examples
    from dominating), rescaled so training rows weigh 1 on average; a row with no known class
    weighs 0. Sigmoid rows weigh 1 (their imbalance is handled per tag in the loss, see
    ``positive_weights``). Weights use the training supports stored in the space, so the same
    weights apply to validation rows.
    """
    weights = {}
    for head in space.heads:
        y = encoded[head.name]
        if head.kind == SIGMOID:
            weights[head.name] = np.ones(len(y), dtype=np.float32)
            continue
        support = np.array([c.support for c in head.classes], dtype=np.float64)
        cw = (head.n_labeled / (head.size * support)) ** class_weight_power
        cw /= (support * cw).sum() / support.sum()
        labeled = y.sum(axis=1) > 0
        weights[head.name] = np.where(labeled, cw[y.argmax(axis=1)], 0.0).astype(np.float32)
    return weights


def positive_weights(space: LabelSpace, max_weight: float = 10.0) -> dict[str, np.ndarray]:
    """Weight of a positive against a negative per sigmoid column: sqrt(neg/pos), in [1, max]."""
    weights = {}
    for head in space.heads:
        if head.kind != SIGMOID:
            continue
        pos = np.array([c.support for c in head.classes], dtype=np.float64)
        neg = np.maximum(space.n_train - pos, 1.0)
        weights[head.name] = np.clip(np.sqrt(neg / pos), 1.0, max_weight).astype(np.float32)
    return weights


def decode(binary: Mapping[str, np.ndarray], space: LabelSpace) -> list[list[tuple[str, str, str]]]:
    """Turn 0/1 matrices per head back into (tag_type, facet, tag) lists, one per product."""
    n = len(next(iter(binary.values()))) if binary else 0
    out: list[list[tuple[str, str, str]]] = [[] for _ in range(n)]
    for head in space.heads:
        rows, cols = np.nonzero(np.asarray(binary[head.name]) > 0)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            cls = head.classes[c]
            out[r].append((head.tag_type, cls.facet, cls.tag))
    return out
