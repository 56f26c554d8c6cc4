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

When the labels carry ``level`` (1 = top) and ``parent`` (the tag one level up, same product
and tag type), chains of single-valued facets (``masterCategory > subCategory >
articleType``) become ``Taxonomy`` entries of the space: their softmax heads, top level
first, and the class paths seen in training, which ``scoring.apply_thresholds`` decodes
jointly so a product's levels always form a path of the taxonomy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from tag_pipeline.lib.vocabulary import TAG_TYPES

SOFTMAX = "softmax"
SIGMOID = "sigmoid"
LABEL_COLUMNS = ("product_id", "tag", "tag_type", "facet")
HIERARCHY_COLUMNS = ("level", "parent")
NO_CLASS = -1  # a level a taxonomy path does not reach


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
class Taxonomy:
    """A chain of softmax heads, one per level of a hierarchy, and its valid class paths.

    Attributes:
        tag_type: Tag type of every head of the chain.
        heads: Softmax head names, top level first.
        paths: Valid paths as class indices into each head's classes, ``NO_CLASS`` (-1) for
            the levels a path does not reach. No path is a strict prefix of another: a node
            with children in training always continues, a node without ends its path.
    """

    tag_type: str
    heads: tuple[str, ...]
    paths: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if len(self.heads) < 2:
            raise ValueError(f"taxonomy of {self.tag_type!r} needs at least 2 heads, got "
                             f"{list(self.heads)}")
        if not self.paths:
            raise ValueError(f"taxonomy {list(self.heads)} has no paths")
        for path in self.paths:
            depth = path_depth(path)
            if (len(path) != len(self.heads) or depth == 0
                    or any(c < 0 for c in path[:depth])
                    or any(c != NO_CLASS for c in path[depth:])):
                raise ValueError(f"taxonomy {list(self.heads)} has path {list(path)}; a path "
                                 f"has one class index per head, {NO_CLASS} only after its "
                                 "last level")


def path_depth(path: Sequence[int]) -> int:
    """Number of levels a taxonomy path reaches (its entries before the first ``NO_CLASS``)."""
    for depth, c in enumerate(path):
        if c == NO_CLASS:
            return depth
    return len(path)


@dataclass(frozen=True)
class LabelSpace:
    """Heads, their classes and the rare tags left out, as decided on the training split."""

    heads: tuple[Head, ...]
    rare_tags: tuple[RareTag, ...]
    min_support: int
    n_train: int
    taxonomies: tuple[Taxonomy, ...] = ()

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
        # label spaces written before taxonomies existed have no key: no hierarchy
        taxonomies = tuple(
            Taxonomy(tag_type=x["tag_type"], heads=tuple(x["heads"]),
                     paths=tuple(tuple(int(c) for c in p) for p in x["paths"]))
            for x in data.get("taxonomies", [])
        )
        return cls(heads=heads, rare_tags=rare, min_support=int(data["min_support"]),
                   n_train=int(data["n_train"]), taxonomies=taxonomies)


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
        labels: Frame with product_id, tag, tag_type and facet; with ``level`` and ``parent``
            as well, chains of softmax heads become taxonomies (see ``find_taxonomies``).
            Other columns are ignored.
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
    taxonomies = (find_taxonomies(labels, ids, heads)
                  if all(c in labels.columns for c in HIERARCHY_COLUMNS) else ())
    return LabelSpace(heads=heads, rare_tags=rare_tags, min_support=min_support,
                      n_train=ids.len(), taxonomies=taxonomies)


def _hierarchy_rows(labels: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
    missing = [c for c in (*LABEL_COLUMNS, *HIERARCHY_COLUMNS) if c not in labels.columns]
    if missing:
        raise ValueError(f"labels frame lacks column(s) {missing} needed for taxonomies; "
                         f"has {labels.columns}")
    try:
        frame = labels.select(*LABEL_COLUMNS, pl.col("level").cast(pl.Int64),
                              pl.col("parent").cast(pl.Utf8))
    except pl.exceptions.InvalidOperationError as err:
        raise ValueError(f"labels column 'level' must hold integers: {err}") from err
    return frame.filter(pl.col("product_id").is_in(ids.implode())).unique()


def _facet_chains(rows: pl.DataFrame) -> list[tuple[str, list[str]]]:
    """(tag_type, facets top-down) for every chain of facets linked by parent tags."""
    child = rows.filter((pl.col("level") > 1) & pl.col("parent").is_not_null())
    above = rows.select("product_id", "tag_type", pl.col("tag").alias("parent"),
                        pl.col("facet").alias("parent_facet"),
                        (pl.col("level") + 1).alias("level"))
    edges = (child.join(above, on=["product_id", "tag_type", "parent", "level"], how="inner")
             .group_by("tag_type", "facet", "parent_facet").len()
             # ties go to the facet first by name, so the chains do not depend on row order
             .sort("len", "tag_type", "facet", "parent_facet",
                   descending=[True, False, False, False]))
    parent_of: dict[tuple[str, str], str] = {}
    for tag_type, facet, parent_facet, _ in edges.iter_rows():
        parent_of.setdefault((tag_type, facet), parent_facet)
    # a facet continued by several child facets follows the one most rows link to it
    child_of: dict[tuple[str, str], str] = {}
    for tag_type, facet, parent_facet, _ in edges.iter_rows():
        if parent_of[(tag_type, facet)] == parent_facet:
            child_of.setdefault((tag_type, parent_facet), facet)
    chains = []
    for tag_type, root in sorted(set(child_of) - set(parent_of)):
        facets = [root]
        while (tag_type, facets[-1]) in child_of and child_of[(tag_type, facets[-1])] not in facets:
            facets.append(child_of[(tag_type, facets[-1])])
        chains.append((tag_type, facets))
    return chains


def _valid_paths(rows: pl.DataFrame, heads: Sequence[Head]) -> tuple[tuple[int, ...], ...]:
    """Class paths of the training products through ``heads``, strict prefixes left out."""
    classes = pl.DataFrame(
        [(h.tag_type, c.facet, c.tag, level, col) for level, h in enumerate(heads)
         for col, c in enumerate(h.classes)],
        schema={"tag_type": pl.Utf8, "facet": pl.Utf8, "tag": pl.Utf8, "chain_level": pl.Int64,
                "col": pl.Int64}, orient="row")
    hits = rows.join(classes, on=["tag_type", "facet", "tag"], how="inner")
    if hits.is_empty():
        return ()
    products, row = np.unique(hits["product_id"].to_numpy(), return_inverse=True)
    grid = np.full((len(products), len(heads)), NO_CLASS, dtype=np.int64)
    grid[row.reshape(-1), hits["chain_level"].to_numpy()] = hits["col"].to_numpy()
    # a path stops at the first level without a supported class (rare tag, or none)
    grid[np.cumprod(grid >= 0, axis=1) == 0] = NO_CLASS
    found = {tuple(int(c) for c in p) for p in np.unique(grid, axis=0) if p[0] >= 0}
    prefixes = {p[:d] + (NO_CLASS,) * (len(p) - d) for p in found for d in range(1, path_depth(p))}
    return tuple(sorted(found - prefixes))


def find_taxonomies(labels: pl.DataFrame, train_ids: Iterable[str] | pl.Series,
                    heads: Sequence[Head]) -> tuple[Taxonomy, ...]:
    """Chains of softmax heads linked by parent tags, with their paths in training.

    A facet at level ``i > 1`` is the child of the level ``i - 1`` facet of the same tag type
    that holds its rows' parent tags on the same product (the facet most rows point to). The
    edges are followed top-down; a chain stops before its first facet without a softmax head.
    Its paths are those of the training products: per product the class per level, up to the
    first level where the product has no supported class; paths that are a strict prefix of
    another are left out. Levels no path reaches are cut off, and a chain is kept with 2
    levels or more.

    Args:
        labels: Frame with product_id, tag, tag_type, facet, level and parent.
        train_ids: Ids of the products in the training split.
        heads: The heads of the label space, decided on the same split.

    Returns:
        One taxonomy per chain, ordered by tag type and top facet.
    """
    ids = pl.Series("product_id", list(train_ids), dtype=pl.Utf8).unique()
    rows = _hierarchy_rows(labels, ids)
    softmax = {(h.tag_type, h.facets[0]): h for h in heads if h.kind == SOFTMAX}
    taxonomies = []
    for tag_type, facets in _facet_chains(rows):
        chain: list[Head] = []
        for facet in facets:
            if (tag_type, facet) not in softmax:
                break
            chain.append(softmax[(tag_type, facet)])
        paths = _valid_paths(rows, chain) if len(chain) >= 2 else ()
        # levels no training path reaches (their parents' tags all rare) are left out
        depth = max((path_depth(p) for p in paths), default=0)
        if depth >= 2:
            taxonomies.append(Taxonomy(tag_type=tag_type,
                                       heads=tuple(h.name for h in chain[:depth]),
                                       paths=tuple(p[:depth] for p in paths)))
    return tuple(taxonomies)


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
