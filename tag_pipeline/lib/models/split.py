"""Stable train/validation/test assignment of products by a salted hash of the id."""

from __future__ import annotations

import hashlib

import polars as pl

SPLITS = ("train", "val", "test")


def _unit_interval(product_id: str, salt: str) -> float:
    """Map an id to [0, 1) with sha256, which (unlike ``hash()``) is the same in every process."""
    digest = hashlib.sha256(f"{salt}\x1f{product_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(product_ids: pl.Series, train: float = 0.8, val: float = 0.1,
                 salt: str = "tag_pipeline-v1") -> pl.Series:
    """Assign every product to 'train', 'val' or 'test' from a hash of its id alone.

    The split of an id depends only on the id, the salt and the fractions, so adding or removing
    other products never moves it. Fractions are expected, not exact, shares.

    Args:
        product_ids: Product ids (cast to str); nulls are rejected.
        train: Expected share of the training split.
        val: Expected share of the validation split; the rest is the test split.
        salt: Changing it draws a new, independent split.

    Returns:
        A Utf8 series named ``split``, aligned with ``product_ids``.

    Raises:
        ValueError: On null ids or fractions outside [0, 1] or summing to more than 1.
    """
    if not (0.0 <= train <= 1.0 and 0.0 <= val <= 1.0 and train + val <= 1.0):
        raise ValueError(f"split fractions train={train}, val={val} must lie in [0, 1] "
                         "and sum to at most 1")
    if product_ids.null_count():
        raise ValueError(f"product_ids has {product_ids.null_count()} null ids; "
                         "every product needs an id to be assigned a split")
    cut_val = train + val
    splits = []
    for product_id in product_ids.cast(pl.Utf8).to_list():
        u = _unit_interval(product_id, salt)
        splits.append("train" if u < train else "val" if u < cut_val else "test")
    return pl.Series("split", splits, dtype=pl.Utf8)
