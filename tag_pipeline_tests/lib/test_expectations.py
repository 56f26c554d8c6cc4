"""The GX validation library against real Great Expectations, on tiny literal frames."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from tag_pipeline.lib.expectations.runner import (
    ExpectationSpec,
    ValidationOutcome,
    _context,
    validate_frame,
)
from tag_pipeline.lib.expectations.suites import ID_COLUMNS, SUITES


def raw_products() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "load_id": ["L1", "L1", "L1", "L2"],
            "source_file": ["a.csv", "a.csv", "a.csv", "a.csv"],
            "source_line": [1, 2, 3, 1],
            "loaded_at": pd.to_datetime(["2026-01-01"] * 3 + ["2026-01-02"]),
            "product_id": ["P1", "P2", None, "P1"],
            "title": ["红色连衣裙", "Blue shirt", "", "红色连衣裙"],
            "description": ["", "cotton", None, ""],
            "image_ref": ["p1.jpg", None, None, "p1.jpg"],
            "price_raw": ["12.5", "n/a", None, "12.5"],
            "updated_at_raw": ["2026-01-01", None, None, "2026-01-02"],
        }
    )


def cleaned_products() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": ["P1", "P2", "P3"],
            "title": ["红色连衣裙", "Blue shirt", "Mixed 衬衫"],
            "description": ["", "cotton", None],
            "text_lang": ["zh", "en", "mixed"],
            "image_ref": ["p1.jpg", None, "p3.jpg"],
            "image_path": ["/img/p1.jpg", None, None],
            "image_status": ["ok", "none", "missing"],
            "image_width": [640, None, None],
            "image_height": [480, None, None],
            "price": [12.5, None, 0.0],
            "currency": ["CNY", None, "USD"],
            "updated_at": pd.to_datetime(["2026-01-01", None, "2026-01-03"]),
            "source_file": ["a.csv", "a.csv", "b.csv"],
            "source_line": [1, 2, 1],
            "load_id": ["L1", "L1", "L2"],
        }
    )


def rejected_products() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source_file": ["a.csv", "r.csv", "r.csv"],
            "source_line": [3, 7, 9],
            "load_id": ["L1", "L3", "L3"],
            "product_id": [None, "P9", None],
            "reject_reason": ["missing_id", "empty_title", "malformed_line"],
            "stage": ["clean", "clean", "parse"],
            "detail": ["no product_id", "", "4 fields, expected 6"],
        }
    )


def row_accounting() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source_file": ["a.csv", "b.csv"],
            "raw_rows": [3, 5],
            "parse_rejected": [0, 1],
            "cleaned": [2, 3],
            "rejected": [1, 0],
            "superseded": [0, 1],
            "accounted": [3, 5],
        }
    )


def product_labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": ["P1", "P1", "P2"],
            "tag": ["dress", "red", "shirt"],
            "tag_type": ["category", "attribute", "category"],
            "facet": ["category_l1", "color", "category_l1"],
            "parent": [None, None, None],
            "level": [1, 1, 1],
            "source": ["catalog", "model", "feedback"],
            "in_taxonomy": [True, True, True],
        }
    )


def tag_taxonomy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tag": ["dress", "shirt", "red"],
            "tag_type": ["category", "category", "attribute"],
            "facet": ["category_l1", "category_l1", "color"],
            "parent": [None, None, None],
            "level": [1, 1, 1],
            "product_count": [1, 1, 1],
        }
    )


def raw_product_rejects() -> pd.DataFrame:
    return pd.DataFrame({"source_file": ["a.csv"], "source_line": [3],
                         "error_type": ["malformed_line"]})


def ingest_files() -> pd.DataFrame:
    return pd.DataFrame({"load_id": ["l1", "l2"], "source_file": ["a.csv", "a.csv"],
                         "profile": ["p", "p"], "content_hash": ["h1", "h2"],
                         "status": ["new", "changed"], "file_format": ["csv", "csv"],
                         "rows_loaded": [3, 4], "rows_rejected": [0, 1]})


def stg_products() -> pd.DataFrame:
    return pd.DataFrame({"source_file": ["a.csv"] * 3, "source_line": [2, 3, 4],
                         "row_status": ["cleaned", "rejected", "superseded"],
                         "reject_reason": [None, "empty_title", None],
                         "has_reason": [False, True, False],
                         "text_lang": ["zh", "en", "mixed"]})


def image_checks() -> pd.DataFrame:
    return pd.DataFrame({"image_ref": ["a.png", "b.png"], "status": ["ok", "corrupt"],
                         "has_path": [True, False], "width": [64, None],
                         "height": [64, None]})


def label_rules() -> pd.DataFrame:
    return pd.DataFrame({"field": ["category_path", "attributes"],
                         "tag_type": ["category", "attribute"], "shape": ["path", "key_value"]})


def style_lexicon() -> pd.DataFrame:
    return pd.DataFrame({"tag": ["Solid", "Solid"], "term": ["solid", "纯色"],
                         "facet": ["style", "style"], "tag_type": ["style", "style"],
                         "script": ["latin", "han"], "needle": [" solid ", "纯色"]})


def product_features() -> pd.DataFrame:
    return pd.DataFrame({"product_id": ["P1", "P2"], "split": ["train", "test"],
                         "title": ["a", "b"]})


def product_tags() -> pd.DataFrame:
    return pd.DataFrame({
        "product_id": ["P1", "P1", "P2"], "tag": ["Dresses", "Red", "Shirts"],
        "tag_type": ["category", "attribute", "category"],
        "source": ["catalog", "model", "refiner"], "score": [1.0, 0.83, 0.51],
        "run_id": ["r1", "r1", "r2"],
        "tagged_at": pd.to_datetime(["2026-11-28"] * 3),
        "has_tagger_version": [False, True, True]})


def model_tags() -> pd.DataFrame:
    return pd.DataFrame({
        "product_id": ["P1", "P1"], "tag": ["Dresses", "Dresses"],
        "tag_type": ["category", "category"], "facet": ["category_l2", "category_l3"],
        "score": [0.9, 0.8], "source": ["model", "refiner"], "tagger_version": ["1", "1"]})


def product_tag_history() -> pd.DataFrame:
    return pd.DataFrame({
        "product_id": ["P1", "P1"], "tag": ["Red", "Red"],
        "tag_type": ["attribute", "attribute"], "change": ["added", "removed"],
        "old_score": [None, 0.83], "new_score": [0.83, None], "run_id": ["r1", "r2"],
        "changed_at": pd.to_datetime(["2026-11-27", "2026-11-28"]), "write_seq": [1, 2]})


def tag_coverage() -> pd.DataFrame:
    return pd.DataFrame({"product_id": ["P1", "P2"],
                         "fate": ["tagged", "untagged_with_reason"]})


def tag_consistency() -> pd.DataFrame:
    return pd.DataFrame({"product_id": ["P1", "P2"], "tag_type": ["attribute", "attribute"],
                         "facet": ["gender", "gender"], "n_tags": [1, 1]})


def refiner_ablation() -> pd.DataFrame:
    return pd.DataFrame({
        "variant": ["tagger", "tagger+refiner", "tagger+repair"],
        "micro_f1": [0.9, 0.91, 0.9], "macro_f1": [0.8, 0.82, 0.8], "p_at_5": [0.9] * 3,
        "ndcg_at_5": [0.9] * 3, "inconsistency_rate": [0.01, 0.0, 0.0],
        "coverage": [0.9] * 3, "tags_per_product": [7.2, 7.1, 7.2]})


def catalog_tag_disagreements() -> pd.DataFrame:
    return pd.DataFrame({
        "product_id": ["P1", "P2"], "tag_type": ["attribute", "category"],
        "facet": ["baseColour", "articleType"], "catalog_tag": ["Black", "Free Gifts"],
        "model_tag": ["Yellow", "Watches"], "model_score": [0.97, 1.0],
        "model_source": ["model", "refiner"], "tagger_version": ["1", "1"],
        "differs": [True, True]})


def raw_sales() -> pd.DataFrame:
    return pd.DataFrame({
        "load_id": ["L1", "L1"], "source_file": ["s.csv", "s.csv"], "source_line": [1, 2],
        "order_id": ["O1", "O1"], "product_id": ["P1", "P2"], "quantity": [1, 3],
        "price": [9.5, 0.0], "ordered_at": pd.to_datetime(["2026-11-27", "2026-11-28"]),
        "user_key": ["u_" + "a" * 32, None]})


def raw_feedback() -> pd.DataFrame:
    return pd.DataFrame({
        "load_id": ["L1", "L1"], "source_file": ["f.csv", "f.csv"], "source_line": [1, 2],
        "product_id": ["P1", "P1"], "tag": ["Red", "handmade"], "action": ["reject", "add"],
        "created_at": pd.to_datetime(["2026-11-27", "2026-11-28"]),
        "user_key": ["u_" + "b" * 32, "u_" + "c" * 32]})


def sales_by_product_period() -> pd.DataFrame:
    return pd.DataFrame({"product_id": ["P1", "P1"],
                         "month": pd.to_datetime(["2026-10-01", "2026-11-01"]),
                         "units": [3, 0], "order_lines": [2, 1], "revenue": [28.5, 0.0]})


def sales_by_product_window() -> pd.DataFrame:
    return pd.DataFrame({"product_id": ["P1", "P2"], "units": [60, 0],
                         "previous_units": [0, 4]})


def sales_season_peaks() -> pd.DataFrame:
    return pd.DataFrame({"product_id": ["P1"], "month": pd.to_datetime(["2026-11-01"]),
                         "month_of_year": [11], "units": [40], "ratio": [4.2]})


def behaviour_tags() -> pd.DataFrame:
    return pd.DataFrame({"product_id": ["P1", "P1"], "tag": ["bestseller", "singles_day"],
                         "tag_type": ["attribute", "scene"], "score": [1.0, 0.76],
                         "evidence": ["60 units", "40 units in 2026-11"]})


def sales_daily() -> pd.DataFrame:
    return pd.DataFrame({"sales_date": pd.to_datetime(["2026-11-11", "2026-11-11"]),
                         "product_id": ["P1", "P2"], "units": [6, 1], "order_lines": [3, 1],
                         "revenue": [60.0, 0.0], "buyers": [2, 0]})


VALID: dict[str, Callable[[], pd.DataFrame]] = {
    "sales_daily": sales_daily,
    "product_tags": product_tags,
    "model_tags": model_tags,
    "product_tag_history": product_tag_history,
    "tag_coverage": tag_coverage,
    "tag_consistency": tag_consistency,
    "refiner_ablation": refiner_ablation,
    "catalog_tag_disagreements": catalog_tag_disagreements,
    "raw_sales": raw_sales,
    "raw_feedback": raw_feedback,
    "sales_by_product_period": sales_by_product_period,
    "sales_by_product_window": sales_by_product_window,
    "sales_season_peaks": sales_season_peaks,
    "behaviour_tags": behaviour_tags,
    "product_features": product_features,
    "raw_product_rejects": raw_product_rejects,
    "ingest_files": ingest_files,
    "stg_products": stg_products,
    "image_checks": image_checks,
    "label_rules": label_rules,
    "style_lexicon": style_lexicon,
    "taxonomy_coverage": product_labels,
    "raw_products": raw_products,
    "cleaned_products": cleaned_products,
    "rejected_products": rejected_products,
    "row_accounting": row_accounting,
    "product_labels": product_labels,
    "tag_taxonomy": tag_taxonomy,
}


def validate(table: str, df: pd.DataFrame | pl.DataFrame) -> ValidationOutcome:
    return validate_frame(df, table, SUITES[table](), ID_COLUMNS[table])


def set_cell(df: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    df = df.copy()
    if value is None:
        df[column] = df[column].astype(object)
    df.loc[row, column] = value
    return df


def test_every_table_has_a_valid_fixture_and_id_columns():
    assert set(SUITES) == set(VALID) == set(ID_COLUMNS)


@pytest.mark.parametrize("table", sorted(VALID))
def test_suite_passes_on_valid_frame(table):
    outcome = validate(table, VALID[table]())

    assert outcome.success, outcome.to_markdown()
    assert outcome.failures == []
    assert outcome.evaluated == outcome.successful == len(SUITES[table]())
    assert outcome.row_count == len(VALID[table]())
    assert f"all {outcome.evaluated} expectations passed" in outcome.to_markdown()


# (table, defective frame, failing expectation, column, values a reported row must carry)
DEFECTS = [
    pytest.param(
        "product_tags", lambda: set_cell(product_tags(), 1, "score", 1.2),
        "ExpectColumnValuesToBeBetween", "score", {"product_id": "P1", "tag": "Red"},
        id="product_tags-score-above-one"),
    pytest.param(
        "product_tags", lambda: set_cell(product_tags(), 2, "tag", "Shirts").pipe(
            lambda df: set_cell(df, 2, "product_id", "P1")).pipe(
            lambda df: set_cell(df, 0, "tag", "Shirts")),
        "ExpectCompoundColumnsToBeUnique", "product_id,tag_type,tag",
        {"product_id": "P1", "tag": "Shirts"}, id="product_tags-tag-twice"),
    pytest.param(
        "tag_consistency", lambda: set_cell(tag_consistency(), 0, "n_tags", 2),
        "ExpectColumnValuesToBeBetween", "n_tags", {"product_id": "P1", "facet": "gender"},
        id="tag_consistency-two-genders"),
    pytest.param(
        "catalog_tag_disagreements",
        lambda: set_cell(set_cell(catalog_tag_disagreements(), 1, "model_tag", "Free Gifts"),
                         1, "differs", False),
        "ExpectColumnValuesToBeInSet", "differs", {"product_id": "P2", "facet": "articleType"},
        id="catalog_tag_disagreements-same-value"),
    pytest.param(
        "tag_coverage", lambda: set_cell(tag_coverage(), 1, "fate", "missing"),
        "ExpectColumnValuesToBeInSet", "fate", {"product_id": "P2"},
        id="tag_coverage-product-lost"),
    pytest.param(
        "raw_sales", lambda: set_cell(raw_sales(), 0, "user_key", "alice@example.com"),
        "ExpectColumnValueLengthsToEqual", "user_key", {"source_file": "s.csv", "source_line": 1},
        id="raw_sales-raw-user-id"),
    pytest.param(
        "sales_daily", lambda: set_cell(sales_daily(), 1, "buyers", 4),
        "ExpectColumnPairValuesAToBeGreaterThanB", "order_lines,buyers",
        {"product_id": "P2"}, id="sales_daily-more-buyers-than-lines"),
    pytest.param(
        "raw_feedback", lambda: set_cell(raw_feedback(), 1, "action", "like"),
        "ExpectColumnValuesToBeInSet", "action", {"source_file": "f.csv", "source_line": 2},
        id="raw_feedback-unknown-action"),
    pytest.param(
        "raw_products",
        lambda: set_cell(raw_products(), 1, "source_line", 1),
        "ExpectCompoundColumnsToBeUnique",
        "source_file,load_id,source_line",
        {"source_file": "a.csv", "source_line": 1},
        id="raw_products-line-loaded-twice",
    ),
    pytest.param(
        "raw_products",
        lambda: set_cell(raw_products(), 2, "source_line", 0),
        "ExpectColumnValuesToBeBetween",
        "source_line",
        {"source_file": "a.csv", "source_line": 0},
        id="raw_products-line-zero",
    ),
    pytest.param(
        "raw_products",
        lambda: set_cell(raw_products(), 3, "load_id", None),
        "ExpectColumnValuesToNotBeNull",
        "load_id",
        {"source_file": "a.csv", "source_line": 1, "load_id": None},
        id="raw_products-null-load",
    ),
    pytest.param(
        "cleaned_products",
        lambda: set_cell(cleaned_products(), 2, "product_id", "P2"),
        "ExpectColumnValuesToBeUnique",
        "product_id",
        {"product_id": "P2"},
        id="cleaned_products-duplicate-id",
    ),
    pytest.param(
        "cleaned_products",
        lambda: set_cell(cleaned_products(), 1, "title", ""),
        "ExpectColumnValueLengthsToBeBetween",
        "title",
        {"product_id": "P2", "title": ""},
        id="cleaned_products-empty-title",
    ),
    pytest.param(
        "cleaned_products",
        lambda: set_cell(cleaned_products(), 2, "text_lang", "fr"),
        "ExpectColumnValuesToBeInSet",
        "text_lang",
        {"product_id": "P3", "text_lang": "fr"},
        id="cleaned_products-unknown-language",
    ),
    pytest.param(
        "cleaned_products",
        lambda: set_cell(cleaned_products(), 0, "text_lang", None),
        "ExpectColumnValuesToNotBeNull",
        "text_lang",
        {"product_id": "P1", "text_lang": None},
        id="cleaned_products-null-language",
    ),
    pytest.param(
        "cleaned_products",
        lambda: set_cell(cleaned_products(), 1, "image_status", "blurry"),
        "ExpectColumnValuesToBeInSet",
        "image_status",
        {"product_id": "P2", "image_status": "blurry"},
        id="cleaned_products-unknown-image-status",
    ),
    pytest.param(
        "cleaned_products",
        lambda: set_cell(cleaned_products(), 0, "price", -3.0),
        "ExpectColumnValuesToBeBetween",
        "price",
        {"product_id": "P1", "price": -3.0},
        id="cleaned_products-negative-price",
    ),
    pytest.param(
        "cleaned_products",
        lambda: set_cell(cleaned_products(), 2, "currency", "GBP"),
        "ExpectColumnValuesToBeInSet",
        "currency",
        {"product_id": "P3", "currency": "GBP"},
        id="cleaned_products-unknown-currency",
    ),
    pytest.param(
        "rejected_products",
        lambda: set_cell(rejected_products(), 1, "reject_reason", "too_cheap"),
        "ExpectColumnValuesToBeInSet",
        "reject_reason",
        {"source_file": "r.csv", "source_line": 7, "reject_reason": "too_cheap"},
        id="rejected_products-unknown-reason",
    ),
    pytest.param(
        "rejected_products",
        lambda: set_cell(rejected_products(), 2, "stage", "load"),
        "ExpectColumnValuesToBeInSet",
        "stage",
        {"source_file": "r.csv", "source_line": 9, "stage": "load"},
        id="rejected_products-unknown-stage",
    ),
    pytest.param(
        "row_accounting",
        lambda: set_cell(row_accounting(), 1, "accounted", 4),
        "ExpectColumnPairValuesToBeEqual",
        "accounted,raw_rows",
        {"source_file": "b.csv", "accounted": 4, "raw_rows": 5},
        id="row_accounting-rows-lost",
    ),
    pytest.param(
        "row_accounting",
        lambda: set_cell(row_accounting(), 0, "superseded", -1),
        "ExpectColumnValuesToBeBetween",
        "superseded",
        {"source_file": "a.csv", "superseded": -1},
        id="row_accounting-negative-count",
    ),
    pytest.param(
        "stg_products",
        lambda: set_cell(stg_products(), 1, "has_reason", False),
        "ExpectColumnPairValuesToBeInSet",
        "row_status,has_reason",
        {"source_file": "a.csv", "source_line": 3},
        id="stg_products-rejected-without-reason",
    ),
    pytest.param(
        "image_checks",
        lambda: set_cell(image_checks(), 1, "has_path", True),
        "ExpectColumnPairValuesToBeInSet",
        "status,has_path",
        {"image_ref": "b.png"},
        id="image_checks-unusable-image-with-path",
    ),
    pytest.param(
        "ingest_files",
        lambda: set_cell(ingest_files(), 1, "content_hash", "h1"),
        "ExpectCompoundColumnsToBeUnique",
        "profile,content_hash",
        {"load_id": "l2"},
        id="ingest_files-content-loaded-twice",
    ),
    pytest.param(
        "taxonomy_coverage",
        lambda: set_cell(product_labels(), 1, "in_taxonomy", False),
        "ExpectColumnValuesToBeInSet",
        "in_taxonomy",
        {"product_id": "P1", "tag": "red", "in_taxonomy": False},
        id="taxonomy_coverage-tag-not-in-taxonomy",
    ),
    pytest.param(
        "product_labels",
        lambda: set_cell(product_labels(), 1, "tag_type", "mood"),
        "ExpectColumnValuesToBeInSet",
        "tag_type",
        {"product_id": "P1", "tag": "red", "tag_type": "mood"},
        id="product_labels-unknown-tag-type",
    ),
    pytest.param(
        "product_labels",
        lambda: set_cell(product_labels(), 2, "source", "guess"),
        "ExpectColumnValuesToBeInSet",
        "source",
        {"product_id": "P2", "tag": "shirt", "source": "guess"},
        id="product_labels-unknown-source",
    ),
    pytest.param(
        "product_labels",
        lambda: pd.concat([product_labels(), product_labels().iloc[[2]]], ignore_index=True),
        "ExpectCompoundColumnsToBeUnique",
        "product_id,tag_type,facet,tag",
        {"product_id": "P2", "tag_type": "category", "facet": "category_l1", "tag": "shirt"},
        id="product_labels-label-twice",
    ),
    pytest.param(
        "tag_taxonomy",
        lambda: set_cell(tag_taxonomy(), 2, "product_count", 0),
        "ExpectColumnValuesToBeBetween",
        "product_count",
        {"tag": "red", "tag_type": "attribute", "product_count": 0},
        id="tag_taxonomy-unused-tag",
    ),
    pytest.param(
        "tag_taxonomy",
        lambda: set_cell(tag_taxonomy(), 1, "tag", "dress"),
        "ExpectCompoundColumnsToBeUnique",
        "tag_type,facet,tag",
        {"tag": "dress", "tag_type": "category", "facet": "category_l1"},
        id="tag_taxonomy-tag-twice",
    ),
]


@pytest.mark.parametrize(("table", "make", "expectation", "column", "row"), DEFECTS)
def test_defect_fails_and_names_offending_row(table, make, expectation, column, row):
    outcome = validate(table, make())

    assert not outcome.success
    assert [(f.expectation, f.column) for f in outcome.failures] == [(expectation, column)]
    failure = outcome.failures[0]
    assert failure.unexpected_count >= 1
    assert failure.error is None
    assert failure.description  # every suite expectation carries human words
    assert any(row.items() <= sample.items() for sample in failure.sample_rows), failure
    assert outcome.successful == outcome.evaluated - 1


def test_duplicate_id_reports_both_rows_values_and_markdown():
    outcome = validate("cleaned_products", set_cell(cleaned_products(), 2, "product_id", "P2"))

    failure = outcome.failures[0]
    assert failure.unexpected_count == 2
    assert failure.sample_values == ["P2", "P2"]
    assert failure.sample_rows == [{"product_id": "P2"}, {"product_id": "P2"}]
    report = outcome.to_markdown()
    assert "1 of 10 expectations failed" in report
    assert "| ExpectColumnValuesToBeUnique | product_id | one row per product | 2 |" in report
    assert "| P2 |" in report


def test_accounting_markdown_and_metadata_name_the_file():
    outcome = validate("row_accounting", set_cell(row_accounting(), 1, "accounted", 4))

    assert "| b.csv | 4 | 5 |" in outcome.to_markdown()
    meta = outcome.to_metadata()
    assert meta == {
        "evaluated": 13,
        "successful": 12,
        "failed": 1,
        "success_percent": round(100 * 12 / 13, 4),
        "failed.ExpectColumnPairValuesToBeEqual.accounted,raw_rows": 1,
    }


def test_to_markdown_caps_rows():
    df = cleaned_products()
    df = pd.concat([df] * 8, ignore_index=True)
    df["text_lang"] = "fr"
    outcome = validate("cleaned_products", df)

    lang = next(f for f in outcome.failures if f.column == "text_lang")
    assert lang.unexpected_count == 24
    assert len(lang.sample_rows) == 10  # GX's partial list, capped by the runner
    report = outcome.to_markdown(max_rows=3)
    assert "Offending rows for ExpectColumnValuesToBeInSet on text_lang (first 3)" in report


def test_nulls_allowed_where_the_suite_says_so():
    df = cleaned_products()
    df["price"] = None
    df["currency"] = None
    assert validate("cleaned_products", df).success


def test_table_level_expectation_reports_observed_value():
    specs = [ExpectationSpec("ExpectTableRowCountToBeBetween", {"min_value": 5}, "enough rows")]
    outcome = validate_frame(cleaned_products(), "sized", specs, ["product_id"])

    failure = outcome.failures[0]
    assert (failure.column, failure.observed_value, failure.unexpected_count) == (None, 3, None)
    assert outcome.to_metadata()["failed.ExpectTableRowCountToBeBetween._table"] == 3
    assert "observed 3" in outcome.to_markdown()


def test_unknown_expectation_type_raises_naming_suite_and_type():
    specs = [ExpectationSpec("ExpectColumnValuesToBeGreat", {"column": "product_id"})]
    with pytest.raises(ValueError, match=r"'my_suite'.*'ExpectColumnValuesToBeGreat'"):
        validate_frame(cleaned_products(), "my_suite", specs, ["product_id"])


def test_invalid_expectation_kwargs_raise_naming_suite_and_type():
    specs = [ExpectationSpec("ExpectColumnValuesToNotBeNull", {"colum": "product_id"})]
    with pytest.raises(ValueError, match=r"'my_suite'.*ExpectColumnValuesToNotBeNull"):
        validate_frame(cleaned_products(), "my_suite", specs, ["product_id"])


def test_missing_id_column_raises():
    with pytest.raises(ValueError, match=r"'cleaned_products'.*\['product_id'\]"):
        validate("cleaned_products", cleaned_products().drop(columns=["product_id"]))


def test_missing_checked_column_is_a_failure_with_the_gx_error():
    outcome = validate("cleaned_products", cleaned_products().drop(columns=["currency"]))

    assert not outcome.success
    failure = outcome.failures[0]
    assert (failure.expectation, failure.column) == ("ExpectColumnValuesToBeInSet", "currency")
    assert "currency" in failure.error
    assert "error:" in outcome.to_markdown()
    assert "currency" in str(outcome.to_metadata()["failed.ExpectColumnValuesToBeInSet.currency"])


def test_empty_frame_validates_and_passes_vacuously():
    # GX evaluates value expectations over zero rows as passed (unexpected_percent is None);
    # an empty table is only caught by a row-count expectation.
    outcome = validate("cleaned_products", cleaned_products().iloc[0:0])

    assert outcome.success
    assert outcome.row_count == 0
    assert outcome.evaluated == len(SUITES["cleaned_products"]())
    assert "0 rows, all 10 expectations passed" in outcome.to_markdown()


def test_polars_input():
    ok = validate("row_accounting", pl.from_pandas(row_accounting()))
    assert ok.success and ok.row_count == 2

    bad = pl.from_pandas(product_labels()).with_columns(
        pl.when(pl.col("tag") == "red").then(False).otherwise(True).alias("in_taxonomy")
    )
    outcome = validate("taxonomy_coverage", bad)
    assert outcome.failures[0].sample_rows == [
        {"product_id": "P1", "tag_type": "attribute", "facet": "color", "tag": "red",
         "in_taxonomy": False}
    ]


def test_other_input_types_raise():
    with pytest.raises(TypeError, match="cleaned_products"):
        validate("cleaned_products", cleaned_products().to_dict())


def test_repeated_validation_in_one_process_leaves_no_state_behind():
    good, bad = cleaned_products(), set_cell(cleaned_products(), 2, "product_id", "P2")
    for i in range(6):
        outcome = validate("cleaned_products", good if i % 2 else bad)
        assert outcome.success is bool(i % 2)

    context, _ = _context()
    assert context.suites.all() == []
    assert context.validation_definitions.all() == []
    assert context.validation_results_store.list_keys() == []


def test_importing_the_library_loads_neither_gx_nor_dagster():
    code = (
        "import sys; import tag_pipeline.lib.expectations.suites; "
        "import tag_pipeline.lib.expectations.runner; "
        "print(sorted(m for m in ('great_expectations', 'dagster') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.stdout.strip() == "[]"
