"""Declarative GX suites for the warehouse tables, keyed by table name.

GX "values" expectations (in set, between, length) skip nulls, so a column whose values must
be present *and* in a set gets an explicit not-null expectation as well.
"""

from __future__ import annotations

from collections.abc import Callable

from tag_pipeline.lib.expectations.runner import ExpectationSpec

TEXT_LANGS = ["zh", "en", "mixed", "other"]
IMAGE_STATUSES = ["ok", "none", "missing", "corrupt", "too_small", "outside_root", "unsupported"]
CURRENCIES = ["CNY", "USD", "INR", "EUR"]
REJECT_STAGES = ["parse", "clean"]
REJECT_REASONS = [
    "missing_id",
    "empty_title",
    "title_too_long",
    "id_too_long",
    "malformed_line",
    "invalid_encoding",
]
TAG_TYPES = ["category", "attribute", "scene", "style"]
LABEL_SOURCES = ["catalog", "feedback", "sales", "model", "refiner"]
ACCOUNTING_COUNTS = ["raw_rows", "parse_rejected", "cleaned", "rejected", "superseded", "accounted"]


def _not_null(column: str, description: str = "") -> ExpectationSpec:
    return ExpectationSpec(
        "ExpectColumnValuesToNotBeNull", {"column": column}, description or f"{column} present"
    )


def _in_set(column: str, values: list, description: str = "") -> ExpectationSpec:
    return ExpectationSpec(
        "ExpectColumnValuesToBeInSet",
        {"column": column, "value_set": list(values)},
        description or f"{column} in {{{', '.join(map(str, values))}}}",
    )


def _at_least(column: str, minimum: float, description: str = "") -> ExpectationSpec:
    return ExpectationSpec(
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": minimum},
        description or f"{column} >= {minimum}",
    )


def _unique_together(columns: list[str], description: str = "") -> ExpectationSpec:
    return ExpectationSpec(
        "ExpectCompoundColumnsToBeUnique",
        {"column_list": list(columns)},
        description or f"({', '.join(columns)}) unique together",
    )


def raw_products_suite() -> list[ExpectationSpec]:
    """Every raw row has its file, line and load, and no (file, load, line) appears twice."""
    return [
        _not_null("source_file"),
        _not_null("source_line"),
        _not_null("load_id"),
        _unique_together(
            ["source_file", "load_id", "source_line"], "each file line loaded once per load"
        ),
        _at_least("source_line", 1, "line numbers start at 1"),
    ]


def cleaned_products_suite() -> list[ExpectationSpec]:
    """Ids present and unique, titles non-empty, codes in their sets, prices non-negative."""
    return [
        _not_null("product_id"),
        ExpectationSpec(
            "ExpectColumnValuesToBeUnique", {"column": "product_id"}, "one row per product"
        ),
        _not_null("title"),
        ExpectationSpec(
            "ExpectColumnValueLengthsToBeBetween",
            {"column": "title", "min_value": 1},
            "title not empty",
        ),
        _not_null("text_lang"),
        _in_set("text_lang", TEXT_LANGS),
        _not_null("image_status"),
        _in_set("image_status", IMAGE_STATUSES),
        ExpectationSpec(
            "ExpectColumnValuesToBeBetween",
            {"column": "price", "min_value": 0, "mostly": 1.0},
            "price >= 0 where present",
        ),
        _in_set("currency", CURRENCIES, "currency known or null"),
    ]


def rejected_products_suite() -> list[ExpectationSpec]:
    """Every rejected row has its file, a stage and a known reason."""
    return [
        _not_null("source_file"),
        _not_null("reject_reason"),
        _not_null("stage"),
        _in_set("stage", REJECT_STAGES),
        _in_set("reject_reason", REJECT_REASONS),
    ]


def row_accounting_suite() -> list[ExpectationSpec]:
    """Every raw row of each file accounted for; all counts present and non-negative."""
    specs = [
        ExpectationSpec(
            "ExpectColumnPairValuesToBeEqual",
            {"column_A": "accounted", "column_B": "raw_rows"},
            "accounted rows equal raw rows",
        )
    ]
    for column in ACCOUNTING_COUNTS:
        specs += [_not_null(column), _at_least(column, 0)]
    return specs


def product_labels_suite() -> list[ExpectationSpec]:
    """Labels complete, types and sources in their sets, every tag in the taxonomy, no twins."""
    return [
        _not_null("product_id"),
        _not_null("tag"),
        _not_null("tag_type"),
        _not_null("facet"),
        _in_set("tag_type", TAG_TYPES),
        _not_null("source"),
        _in_set("source", LABEL_SOURCES),
        _not_null("in_taxonomy"),
        _in_set("in_taxonomy", [True], "tag is in tag_taxonomy"),
        _unique_together(["product_id", "tag_type", "facet", "tag"], "no label twice"),
    ]


def tag_taxonomy_suite() -> list[ExpectationSpec]:
    """Each (tag type, facet, tag) once, in a known type, carried by at least one product."""
    return [
        _unique_together(["tag_type", "facet", "tag"], "each tag once per type and facet"),
        _not_null("tag_type"),
        _in_set("tag_type", TAG_TYPES),
        _at_least("product_count", 1, "tag carried by at least one product"),
        _not_null("tag"),
    ]


SUITES: dict[str, Callable[[], list[ExpectationSpec]]] = {
    "raw_products": raw_products_suite,
    "cleaned_products": cleaned_products_suite,
    "rejected_products": rejected_products_suite,
    "row_accounting": row_accounting_suite,
    "product_labels": product_labels_suite,
    "tag_taxonomy": tag_taxonomy_suite,
}

ID_COLUMNS: dict[str, list[str]] = {
    "raw_products": ["source_file", "source_line"],
    "cleaned_products": ["product_id"],
    "rejected_products": ["source_file", "source_line"],
    "row_accounting": ["source_file"],
    "product_labels": ["product_id", "tag_type", "facet", "tag"],
    "tag_taxonomy": ["tag_type", "facet", "tag"],
}
