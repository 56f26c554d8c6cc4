"""Metrics of a tagger on a labelled product file.

A labelled file is a product file (see ``files``) with one more column, ``tags``: the
product's true tags as ``tag_type:tag`` entries separated by ``|``, e.g.
``category:T-Shirts|attribute/color:Blue|style:Slim Fit``. An entry may name the facet after
the tag type (``attribute/color:Blue``); it must when the model knows that tag name in more
than one facet of the type. An empty ``tags`` value means the product has no tag.

The metrics are those of ``tag_model_evaluation`` on the test split (``training``'s
per-scope metrics over ``metrics.evaluate``), per tag type and over all heads, of the model as
it serves (``serving.product_decisions``): the tagger's decisions, or the refiner's where one
is given (``tag-pipeline eval`` gives the refiner that ``tag`` and ``product_tags`` apply).
Labels of tags outside the model's label space (rare tags, tags it never saw) cannot be
predicted; they are counted and left out, as in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from tag_pipeline.lib.cli.files import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    ImageProblem,
    InputFileError,
    check_images,
    read_batches,
)
from tag_pipeline.lib.models.labels import LabelSpace
from tag_pipeline.lib.vocabulary import TAG_TYPES

if TYPE_CHECKING:
    from tag_pipeline.lib.models.bundle import TaggerBundle
    from tag_pipeline.lib.models.refiner import Refiner

TAGS_COLUMN = "tags"
TAG_SEPARATOR = "|"
_LABEL_SCHEMA = {"product_id": pl.Utf8, "tag_type": pl.Utf8, "facet": pl.Utf8, "tag": pl.Utf8}


@dataclass
class FileEvaluation:
    """Metrics per scope (``all`` and each tag type) and what the file held."""

    metrics: dict[str, dict[str, float]]
    products: int
    labels: int
    unknown_labels: int
    image_problems: list[ImageProblem] = field(default_factory=list)


def _classes(space: LabelSpace) -> pl.DataFrame:
    return pl.DataFrame([(h.tag_type, c.facet, c.tag) for h in space.heads for c in h.classes],
                        schema={"tag_type": pl.Utf8, "facet": pl.Utf8, "tag": pl.Utf8},
                        orient="row").unique()


def parse_labels(batch: pl.DataFrame, space: LabelSpace, source: Path | str,
                 first_row: int = 1) -> tuple[pl.DataFrame, int]:
    """The labels of a batch (product_id, tag_type, facet, tag) that the model knows, and the
    number of labels it does not know.

    Raises:
        InputFileError: an entry is not ``tag_type[/facet]:tag``, names an unknown tag type, or
            names a tag that is in several facets without saying which (naming the row).
    """
    entries = (batch.select(pl.col("product_id"),
                            pl.col(TAGS_COLUMN).fill_null("").str.split(TAG_SEPARATOR))
               .with_row_index("row").explode(TAGS_COLUMN)
               .with_columns(pl.col(TAGS_COLUMN).str.strip_chars())
               .filter(pl.col(TAGS_COLUMN) != ""))
    parts = entries.with_columns(
        pl.col(TAGS_COLUMN).str.splitn(":", 2).struct.rename_fields(["kind", "tag"])
    ).unnest(TAGS_COLUMN).with_columns(
        pl.col("kind").str.splitn("/", 2).struct.rename_fields(["tag_type", "facet"]),
        pl.col("tag").str.strip_chars(),
    ).unnest("kind").with_columns(pl.col("tag_type", "facet").str.strip_chars())

    def fail(rows: pl.DataFrame, problem: Callable[[dict], str]) -> None:
        row = rows.row(0, named=True)
        where = (f"line {batch['_line'][row['row']]}" if "_line" in batch.columns
                 else f"row {first_row + row['row']}")
        raise InputFileError(f"labelled file {source} {where} (product "
                             f"{row['product_id']}): {problem(row)}")

    bad = parts.filter(pl.col("tag").is_null() | (pl.col("tag") == ""))
    if bad.height:
        fail(bad, lambda r: f"tag entry {r['tag_type']!r} is not 'tag_type:tag' or "
                            "'tag_type/facet:tag'")
    unknown_type = parts.filter(~pl.col("tag_type").is_in(TAG_TYPES))
    if unknown_type.height:
        fail(unknown_type, lambda r: f"unknown tag type {r['tag_type']!r} (tag types: "
                                     f"{', '.join(TAG_TYPES)})")
    classes = _classes(space)
    named = parts.filter(pl.col("facet").is_not_null()).join(
        classes, on=["tag_type", "facet", "tag"], how="semi")
    by_name = classes.group_by("tag_type", "tag").agg(pl.col("facet").alias("facets"))
    bare = parts.filter(pl.col("facet").is_null()).drop("facet").join(
        by_name, on=["tag_type", "tag"], how="inner")
    ambiguous = bare.filter(pl.col("facets").list.len() > 1)
    if ambiguous.height:
        fail(ambiguous, lambda r: f"tag {r['tag_type']}:{r['tag']} is in facets "
                                  f"{sorted(r['facets'])}; write it as "
                                  f"{r['tag_type']}/<facet>:{r['tag']}")
    bare = bare.with_columns(facet=pl.col("facets").list.first())
    known = pl.concat([named.select(list(_LABEL_SCHEMA)), bare.select(list(_LABEL_SCHEMA))])
    return known.unique(), parts.height - known.height


def known_labels(labels: pl.DataFrame, space: LabelSpace) -> tuple[pl.DataFrame, int]:
    """The labels (product_id, tag_type, facet, tag) in the model's label space, and the
    number of the others."""
    known = labels.select(list(_LABEL_SCHEMA)).unique().join(
        _classes(space), on=["tag_type", "facet", "tag"], how="semi")
    return known, labels.select(list(_LABEL_SCHEMA)).unique().height - known.height


def evaluate_file(bundle: TaggerBundle, path: Path, batch_size: int = 512,
                  refiner: Refiner | None = None) -> FileEvaluation:
    """The metrics of the tagger (refined by ``refiner``, if given) on a labelled file
    (format in the module docstring).

    Raises:
        InputFileError: the file is missing, unreadable, lacks a column, has a bad tag entry or
            a duplicated product_id, or holds no product.
    """
    space = bundle.space
    batches = read_batches(path, batch_size, (*REQUIRED_COLUMNS, TAGS_COLUMN),
                           OPTIONAL_COLUMNS)
    return _evaluate(bundle, refiner, path, path.parent, None, (
        (batch, lambda b, row: parse_labels(b, space, path, row)) for batch in batches))


def evaluate_profile_file(bundle: TaggerBundle, products, batch_size: int = 512,
                          image_root: Path | None = None, refiner: Refiner | None = None
                          ) -> FileEvaluation:
    """The metrics of the tagger (refined by ``refiner``, if given) on a raw export read
    through its profile (a ``profile_file.ProfileFile``): the catalog's own tags are the
    truth, as in training."""
    by_product = products.labels()
    columns = tuple(c for c in (*OPTIONAL_COLUMNS, *(f.name for f in bundle.feature_columns))
                    if bundle.text_columns is None or c != "description"
                    or "description" in bundle.text_columns)

    def labels_of(batch: pl.DataFrame, _row: int) -> tuple[pl.DataFrame, int]:
        return known_labels(by_product.join(batch.select("product_id"), on="product_id",
                                            how="semi"), bundle.space)

    return _evaluate(bundle, refiner, products.path, products.profile.root, image_root, (
        (batch, labels_of) for batch in products.batches(batch_size, columns)))


def _evaluate(bundle: TaggerBundle, refiner: Refiner | None, path: Path, base_dir: Path,
              image_root: Path | None, batches) -> FileEvaluation:
    from tag_pipeline.lib.models.labels import encode_labels
    from tag_pipeline.lib.models.serving import product_decisions
    from tag_pipeline.lib.models.training import metrics_by_scope

    space = bundle.space
    ids: list[pl.Series] = []
    labels: list[pl.DataFrame] = []
    scores: dict[str, list[np.ndarray]] = {h.name: [] for h in space.heads}
    decisions: dict[str, list[np.ndarray]] = {h.name: [] for h in space.heads}
    problems: list[ImageProblem] = []
    unknown = 0
    row = 1
    for batch, label_fn in batches:
        batch, found = check_images(batch, base_dir, row, image_root=image_root)
        problems += found
        known, missed = label_fn(batch, row)
        labels.append(known)
        unknown += missed
        ids.append(batch["product_id"])
        final, decided = product_decisions(bundle, batch, refiner, batch.height or 1)
        for name in final:
            scores[name].append(final[name].astype(np.float64))
            decisions[name].append(decided[name])
        row += batch.height
    if not ids:
        raise InputFileError(f"labelled file {path} holds no product")
    product_ids = pl.concat(ids)
    duplicated = product_ids.filter(product_ids.is_duplicated())
    if duplicated.len():
        raise InputFileError(f"labelled file {path}: product_id {duplicated[0]!r} is on more "
                             "than one row")
    truth = encode_labels(pl.concat(labels), product_ids, space)
    by_head = {name: np.concatenate(parts) for name, parts in scores.items()}
    by_scope = metrics_by_scope(truth, by_head, bundle.thresholds, space, decisions={
        name: np.concatenate(parts) for name, parts in decisions.items()})
    metrics = {"all": by_scope["all"]}
    metrics.update({scope.removeprefix("type:"): values for scope, values in by_scope.items()
                    if scope.startswith("type:")})
    n_labels = sum(frame.height for frame in labels)
    return FileEvaluation(metrics=metrics, products=product_ids.len(), labels=n_labels,
                          unknown_labels=unknown, image_problems=problems)
