"""Stage 1 of the serving path (``serving``): raw products -> the arrays the backends read.

``model_inputs`` preprocesses with the functions the training pipeline (``make_dataset``) maps:
``product_texts`` through the bundle's tokenizer, and ``images.read_image``, the reader behind
``make_image_loader`` (a missing or corrupt image gives zeros and mask 0, so the tags come from
the text). It calls them directly instead of building a ``tf.data`` pipeline: building one
traces the tokenizer again, about 1 s per call, which would dominate a small serving request.
The tests check that it gives exactly the arrays ``make_dataset`` gives. Raw encoded image
bytes (column ``image_bytes``) go through the same ``read_image`` as an in-memory file, so
bytes and the same file on disk give identical scores.

This module reads the bundle's tokenizer and image size and calls no later stage.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from tag_pipeline.lib.models.catalog_features import (
    FEATURE_TEXT_COLUMN,
    FeatureColumn,
    with_feature_text,
)
from tag_pipeline.lib.models.images import read_image
from tag_pipeline.lib.models.text import product_texts

if TYPE_CHECKING:
    from tag_pipeline.lib.models.bundle import TaggerBundle

# The input columns of a product frame; only title is required.
INPUT_COLUMNS = ("product_id", "title", "description", "image_path", "image_bytes")


def product_frame(products: pl.DataFrame,
                  feature_columns: tuple[FeatureColumn, ...] = ()) -> pl.DataFrame:
    """The input columns of the serving path, checked, typed and with defaults filled in; with
    feature columns, their raw values (null where absent) and the feature words.

    Args:
        products: ``title`` is required; optional are ``product_id`` (default: the row number
            as a string), ``description``, ``image_path`` (null: no image) and
            ``image_bytes`` (raw encoded image, used instead of ``image_path`` when neither
            null nor empty). Other columns are ignored, except the feature columns' own.
        feature_columns: The bundle's feature columns (``catalog_features``).
    """
    if "title" not in products.columns:
        raise ValueError(f"products frame lacks the required column 'title'; "
                         f"has {products.columns}")
    n = products.height
    defaults = {"product_id": pl.Series([str(i) for i in range(n)], dtype=pl.Utf8),
                "description": pl.Series([""] * n, dtype=pl.Utf8),
                "image_path": pl.Series([None] * n, dtype=pl.Utf8),
                "image_bytes": pl.Series([None] * n, dtype=pl.Binary)}
    columns = {}
    for name in INPUT_COLUMNS:
        series = products[name] if name in products.columns else defaults[name]
        if name == "image_bytes":
            if series.dtype not in (pl.Binary, pl.Null):
                raise ValueError(f"products column 'image_bytes' must hold raw bytes (Binary), "
                                 f"has {series.dtype}")
            columns[name] = series.cast(pl.Binary).alias(name)
            continue
        if series.dtype not in (pl.Utf8, pl.Null) and not series.dtype.is_integer():
            raise ValueError(f"products column {name!r} must hold strings, has {series.dtype}")
        columns[name] = series.cast(pl.Utf8).alias(name)
    if columns["product_id"].null_count():
        raise ValueError("products column 'product_id' has null values")
    for feature in feature_columns:
        if feature.name in products.columns:
            columns[feature.name] = products[feature.name].cast(pl.Utf8).alias(feature.name)
        elif "tag_fields" in products.columns:
            columns["tag_fields"] = products["tag_fields"]
    frame = pl.DataFrame(columns)
    raw_values = "tag_fields" in frame.columns or any(f.name in frame.columns
                                                      for f in feature_columns)
    if feature_columns and not raw_values and FEATURE_TEXT_COLUMN in products.columns:
        # rows of product_features carry the feature words already, not the raw values
        return frame.with_columns(products[FEATURE_TEXT_COLUMN].cast(pl.Utf8).fill_null(""))
    if feature_columns:
        frame = with_feature_text(frame, feature_columns)
        if "tag_fields" in frame.columns:
            frame = frame.drop("tag_fields")
    return frame


def has_usable_text(frame: pl.DataFrame) -> np.ndarray:
    """Per product: whether its title or description holds more than white space."""
    blank = pl.lit(True)
    for name in ("title", "description"):
        if name in frame.columns:
            blank = blank & (pl.col(name).fill_null("").str.strip_chars() == "")
    return ~frame.select(blank.alias("blank"))["blank"].to_numpy().astype(bool)


def model_inputs(bundle: TaggerBundle, products: pl.DataFrame) -> dict[str, np.ndarray]:
    """``tokens``, ``image``, ``image_mask`` and ``has_text`` arrays for products, as
    training builds them (``has_text``: the title or description is not blank).

    Args:
        bundle: The tagger (its tokenizer and image size are used).
        products: As for ``product_frame``.
    """
    frame = product_frame(products, bundle.feature_columns)
    size = bundle.config.image_size
    image = np.zeros((frame.height, size, size, 3), np.float32)
    mask = np.zeros((frame.height, 1), np.float32)
    paths, blobs = frame["image_path"].to_list(), frame["image_bytes"].to_list()
    for i, (path, blob) in enumerate(zip(paths, blobs, strict=True)):
        # read_image opens whatever Image.open accepts; bytes go in as an in-memory file
        source = io.BytesIO(blob) if blob else path
        if source:
            image[i], mask[i, 0] = read_image(source, size)
    return {"tokens": bundle.tokenize(product_texts(frame)), "image": image, "image_mask": mask,
            "has_text": has_usable_text(frame)}
