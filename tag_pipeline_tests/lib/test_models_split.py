"""The hash split: stable per id, roughly the requested shares, strict about bad input."""

from __future__ import annotations

import polars as pl
import pytest

from tag_pipeline.lib.models.split import assign_split


def test_split_of_an_id_never_changes_when_products_are_added():
    before = pl.Series([f"sku-{i}" for i in range(500)])
    after = pl.concat([pl.Series([f"new-{i}" for i in range(300)]), before.reverse()])
    old = dict(zip(before.to_list(), assign_split(before).to_list(), strict=True))
    new = dict(zip(after.to_list(), assign_split(after).to_list(), strict=True))
    assert all(new[pid] == split for pid, split in old.items())


def test_split_shares_and_salt():
    ids = pl.Series([f"p{i}" for i in range(4000)])
    split = assign_split(ids, train=0.8, val=0.1)
    assert split.name == "split" and set(split.unique().to_list()) == {"train", "val", "test"}
    shares = split.value_counts(normalize=True).sort("split")
    share = dict(zip(shares["split"].to_list(), shares["proportion"].to_list(), strict=True))
    assert share["train"] == pytest.approx(0.8, abs=0.03)
    assert share["val"] == pytest.approx(0.1, abs=0.02)
    assert (assign_split(ids, salt="other") != split).sum() > 500


def test_integer_ids_split_like_their_string_form():
    assert assign_split(pl.Series([15970, 59263])).to_list() == \
        assign_split(pl.Series(["15970", "59263"])).to_list()


@pytest.mark.parametrize(("train", "val"), [(0.9, 0.2), (-0.1, 0.1), (1.2, 0.0)])
def test_bad_fractions_are_rejected(train, val):
    with pytest.raises(ValueError, match="fractions"):
        assign_split(pl.Series(["a"]), train=train, val=val)


def test_null_ids_are_rejected():
    with pytest.raises(ValueError, match="null"):
        assign_split(pl.Series(["a", None]))
