"""Feature columns: words from raw values, from the warehouse map and in the product text."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tag_pipeline.lib.catalog.profile import ProfileError, parse_profile
from tag_pipeline.lib.models.catalog_features import (
    FEATURE_TEXT_COLUMN,
    FeatureColumn,
    columns_from_json,
    columns_to_json,
    feature_texts,
    with_feature_text,
)
from tag_pipeline.lib.models.text import product_texts

YEAR = FeatureColumn("year")
PRICE = FeatureColumn("price", "numeric")


def test_categorical_and_numeric_words():
    words = feature_texts({"year": ["2011.0", None, "2012", " "],
                           "price": ["USD 12.50", "¥99", "1,299", "free"]},
                          [YEAR, PRICE], 4)
    assert words == ["year_2011 price_usd_b7", "price_cny_b13", "year_2012 price_b20", ""]
    # prices a factor of two apart are two bins apart; currencies never share a bin
    assert feature_texts({"price": ["10", "20", "EUR 10"]}, [PRICE], 3) == [
        "price_b6", "price_b8", "price_eur_b6"]
    with pytest.raises(ValueError, match="feature 'year': 1 values for 2 products"):
        feature_texts({"year": ["2011"]}, [YEAR], 2)


def test_feature_words_from_columns_or_the_tag_fields_map_and_in_the_text():
    served = pl.DataFrame({"title": ["Blue Shirt", "Red Dress"], "description": ["", "silk"],
                           "year": [2011, None]})
    stored = pl.DataFrame({"title": ["Blue Shirt", "Red Dress"], "description": ["", "silk"],
                           "tag_fields": [[{"key": "feature:year", "value": "2011.0"},
                                           {"key": "usage", "value": "Casual"}],
                                          [{"key": "usage", "value": "Party"}]]})
    a = with_feature_text(served, [YEAR])
    b = with_feature_text(stored, [YEAR])
    assert a[FEATURE_TEXT_COLUMN].to_list() == b[FEATURE_TEXT_COLUMN].to_list() == [
        "year_2011", ""]
    assert product_texts(a) == ["Blue Shirt year_2011", "Red Dress [SEP] silk"]
    assert columns_from_json(columns_to_json([YEAR, PRICE])) == (YEAR, PRICE)


def _profile(features):
    return {"name": "p", "root": "/tmp", "source": {"files": "x.csv"},
            "columns": {"id": "id", "title": "t"}, "features": features,
            "training": {"epochs": 3}}


def test_profile_features_and_training():
    profile = parse_profile(_profile(["year", {"column": "p", "name": "price",
                                               "kind": "numeric"}]), Path("/tmp/p.yaml"), {})
    assert profile.features == (FeatureColumn("year", "categorical", "year"),
                                FeatureColumn("price", "numeric", "p"))
    assert profile.training == {"epochs": 3}
    assert "p" in profile.source_columns()
    assert profile.column_origin("p") == "features[1] (price)"
    with pytest.raises(ProfileError, match=r"'features\[0\].kind' is 'date'"):
        parse_profile(_profile([{"column": "y", "kind": "date"}]), Path("/tmp/p.yaml"), {})
    with pytest.raises(ProfileError, match="duplicate names"):
        parse_profile(_profile(["y", {"column": "z", "name": "y"}]), Path("/tmp/p.yaml"), {})
    with pytest.raises(ProfileError, match=r"'features\[0\]' has unknown key"):
        parse_profile(_profile([{"column": "y", "bins": 3}]), Path("/tmp/p.yaml"), {})


def test_the_model_reads_the_same_words_from_raw_values_the_map_or_product_features():
    # serving gives raw columns, the warehouse the tag_fields map, and the refiner's
    # training reads product_features rows, which carry the words and no raw value
    from tag_pipeline.lib.models.inputs import product_frame

    served = pl.DataFrame({"product_id": ["a", "b"], "title": ["Blue Shirt", "Red Dress"],
                           "year": ["2011.0", None]})
    stored = pl.DataFrame({"product_id": ["a", "b"], "title": ["Blue Shirt", "Red Dress"],
                           "tag_fields": [[{"key": "feature:year", "value": "2011.0"}], []]})
    features_rows = pl.DataFrame({"product_id": ["a", "b"], "title": ["Blue Shirt", "Red Dress"],
                                  FEATURE_TEXT_COLUMN: ["year_2011", None]})
    words = [product_frame(frame, (YEAR,))[FEATURE_TEXT_COLUMN].to_list()
             for frame in (served, stored, features_rows)]
    assert words == [["year_2011", ""]] * 3
