"""Declarative GX suites for the warehouse tables, keyed by table name.

GX "values" expectations (in set, between, length) skip nulls, so a column whose values must
be present *and* in a set gets an explicit not-null expectation as well.
"""

from __future__ import annotations

from collections.abc import Callable

from tag_pipeline.lib.expectations.runner import ExpectationSpec
from tag_pipeline.lib.vocabulary import (
    FEEDBACK_ACTIONS,
    FILE_FORMATS,
    IMAGE_STATUSES,
    LABEL_SOURCES,
    ROW_STATUSES,
    TAG_SOURCES,
    TAG_TYPES,
)

TEXT_LANGS = ["zh", "en", "mixed", "other"]
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
FILE_STATUSES = ["new", "changed"]
RULE_SHAPES = ["plain", "multi", "path", "levels", "key_value", "attributes"]
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
    """Labels complete, types and sources in their sets, no label twice."""
    return [
        _not_null("product_id"),
        _not_null("tag"),
        _not_null("tag_type"),
        _not_null("facet"),
        _in_set("tag_type", TAG_TYPES),
        _not_null("source"),
        _in_set("source", LABEL_SOURCES),
        _unique_together(["product_id", "tag_type", "facet", "tag"], "no label twice"),
    ]


def taxonomy_coverage_suite() -> list[ExpectationSpec]:
    """Validated on product_labels joined to tag_taxonomy: every label's tag is in it."""
    return [
        _not_null("in_taxonomy"),
        _in_set("in_taxonomy", [True], "tag is in tag_taxonomy"),
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


def raw_product_rejects_suite() -> list[ExpectationSpec]:
    """Every parse reject keeps its file, line and a known error type."""
    return [
        _not_null("source_file"),
        _not_null("source_line"),
        _at_least("source_line", 1, "line numbers start at 1"),
        _not_null("error_type"),
        _in_set("error_type", ["malformed_line", "invalid_encoding"]),
    ]


def ingest_files_suite() -> list[ExpectationSpec]:
    """One ledger row per loaded file version, with non-negative counts."""
    return [
        ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": "load_id"}, "load ids unique"),
        _unique_together(["profile", "content_hash"], "a file content is loaded once"),
        _in_set("status", FILE_STATUSES),
        _in_set("file_format", FILE_FORMATS),
        _at_least("rows_loaded", 0),
        _at_least("rows_rejected", 0),
    ]


def stg_products_suite() -> list[ExpectationSpec]:
    """Every raw row has exactly one fate; rejected rows carry a reason, others none."""
    return [
        _not_null("row_status"),
        _in_set("row_status", ROW_STATUSES),
        _in_set("reject_reason", REJECT_REASONS),
        ExpectationSpec(
            "ExpectColumnPairValuesToBeInSet",
            {"column_A": "row_status", "column_B": "has_reason",
             "value_pairs_set": [("rejected", True), ("cleaned", False),
                                 ("superseded", False)]},
            "a row has a reject reason exactly when it is rejected",
        ),
        _not_null("text_lang"),
        _in_set("text_lang", TEXT_LANGS),
    ]


def image_checks_suite() -> list[ExpectationSpec]:
    """Every image reference once, with a known status; usable images have a size and path."""
    return [
        ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": "image_ref"},
                        "each reference checked once"),
        _not_null("status"),
        _in_set("status", IMAGE_STATUSES),
        ExpectationSpec(
            "ExpectColumnPairValuesToBeInSet",
            {"column_A": "status", "column_B": "has_path",
             "value_pairs_set": [("ok", True), *((s, False) for s in IMAGE_STATUSES
                                                 if s != "ok")]},
            "only usable images have a path",
        ),
        _at_least("width", 1),
        _at_least("height", 1),
    ]


def label_rules_suite() -> list[ExpectationSpec]:
    """Tag rules name a field, a known tag type and a known shape."""
    return [
        _not_null("field"),
        ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": "field"},
                        "one rule per field"),
        _in_set("tag_type", TAG_TYPES),
        _in_set("shape", RULE_SHAPES),
    ]


def style_lexicon_suite() -> list[ExpectationSpec]:
    """Lexicon terms have a tag, a known type and a needle; each term once per tag."""
    return [
        _not_null("tag"),
        _not_null("needle"),
        _in_set("tag_type", TAG_TYPES),
        _unique_together(["facet", "tag", "term"], "each term once per tag"),
    ]


def product_features_suite() -> list[ExpectationSpec]:
    """Each product once, in exactly one known split, with a title."""
    return [
        _not_null("product_id"),
        ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": "product_id"},
                        "each product once"),
        _not_null("split"),
        _in_set("split", ["train", "val", "test"]),
        _not_null("title"),
    ]


TAG_CHANGES = ["added", "removed", "changed"]
TAG_FATES = ["tagged", "untagged_with_reason"]


def _between(column: str, low: float, high: float, description: str = "") -> ExpectationSpec:
    return ExpectationSpec(
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": low, "max_value": high},
        description or f"{column} in [{low}, {high}]",
    )


def product_tags_suite() -> list[ExpectationSpec]:
    """Tags complete, scores in [0, 1], known types and sources, each tag once per product;
    model and refiner tags name the tagger version that gave them."""
    return [
        *(_not_null(c) for c in ("product_id", "tag", "tag_type", "source", "score", "run_id",
                                 "tagged_at")),
        _in_set("tag_type", TAG_TYPES),
        _in_set("source", TAG_SOURCES),
        _between("score", 0.0, 1.0, "scores in [0, 1]"),
        _unique_together(["product_id", "tag_type", "tag"], "each tag once per product"),
        ExpectationSpec(
            "ExpectColumnPairValuesToBeInSet",
            {"column_A": "source", "column_B": "has_tagger_version",
             "value_pairs_set": [("model", True), ("refiner", True), ("catalog", False),
                                 ("catalog", True), ("feedback", True), ("feedback", False),
                                 ("sales", True), ("sales", False)]},
            "model and refiner tags carry the tagger version",
        ),
    ]


def model_tags_suite() -> list[ExpectationSpec]:
    """The model's tags: complete, scores in [0, 1], from the model or the refiner, each tag
    once per product and facet, with the tagger version."""
    return [
        *(_not_null(c) for c in ("product_id", "tag", "tag_type", "score", "source",
                                 "tagger_version")),
        _in_set("tag_type", TAG_TYPES),
        _in_set("source", ["model", "refiner"]),
        _between("score", 0.0, 1.0, "scores in [0, 1]"),
        # one tag name may be given in two facets (a level-2 and a level-3 category); the
        # candidates keep one of them for product_tags
        _unique_together(["product_id", "tag_type", "facet", "tag"],
                         "each tag once per product and facet"),
    ]


def product_tag_history_suite() -> list[ExpectationSpec]:
    """Every event names its product, tag, change kind, run and time; scores in [0, 1]."""
    return [
        *(_not_null(c) for c in ("product_id", "tag", "tag_type", "change", "run_id",
                                 "changed_at", "write_seq")),
        _in_set("change", TAG_CHANGES),
        _between("old_score", 0.0, 1.0),
        _between("new_score", 0.0, 1.0),
    ]


def tag_coverage_suite() -> list[ExpectationSpec]:
    """Validated on cleaned_products with their fate: every cleaned product is tagged or
    listed in untagged_products with a reason (and never both)."""
    return [_not_null("fate"), _in_set("fate", TAG_FATES,
                                       "every cleaned product tagged or untagged with a reason")]


def tag_consistency_suite() -> list[ExpectationSpec]:
    """Validated on model and refiner tags per (product, single-valued facet): at most one."""
    return [_between("n_tags", 1, 1, "one value per single-valued facet (e.g. one gender)")]


def refiner_ablation_suite() -> list[ExpectationSpec]:
    """Both arms of the ablation present, with rates in [0, 1]."""
    return [
        _not_null("variant"),
        ExpectationSpec("ExpectColumnDistinctValuesToContainSet",
                        {"column": "variant", "value_set": ["tagger", "tagger+refiner"]},
                        "tagger alone and tagger + refiner"),
        *(_between(c, 0.0, 1.0) for c in ("micro_f1", "macro_f1", "p_at_5", "ndcg_at_5",
                                          "inconsistency_rate", "coverage")),
        _at_least("tags_per_product", 0.0),
    ]


def catalog_tag_disagreements_suite() -> list[ExpectationSpec]:
    """Validated on catalog_tag_disagreements with ``differs``: complete rows, one per product
    and facet, a model score in [0, 1] from the model or the refiner, and two different
    values."""
    return [
        *(_not_null(c) for c in ("product_id", "tag_type", "facet", "catalog_tag", "model_tag",
                                 "model_score", "tagger_version")),
        _in_set("tag_type", TAG_TYPES),
        _in_set("model_source", ["model", "refiner"]),
        _between("model_score", 0.0, 1.0, "model scores in [0, 1]"),
        _unique_together(["product_id", "tag_type", "facet"], "one row per product and facet"),
        _in_set("differs", [True], "the model's value differs from the catalog's"),
    ]


def _pseudonym(column: str = "user_key") -> ExpectationSpec:
    return ExpectationSpec(
        "ExpectColumnValueLengthsToEqual", {"column": column, "value": 34},
        "user ids are pseudonyms ('u_' + 32 hex characters), never raw ids")


def _source_rows() -> list[ExpectationSpec]:
    return [_not_null("source_file"), _not_null("source_line"), _not_null("load_id"),
            _unique_together(["source_file", "load_id", "source_line"], "each line once")]


def raw_sales_suite() -> list[ExpectationSpec]:
    """Order lines with a product, a positive quantity, a price >= 0, a time and a pseudonym."""
    return [*_source_rows(), _not_null("order_id"), _not_null("product_id"),
            _at_least("quantity", 1), _at_least("price", 0), _not_null("ordered_at"),
            _pseudonym()]


def raw_feedback_suite() -> list[ExpectationSpec]:
    """Feedback with a product, a tag, a known action, a time and a pseudonym."""
    return [*_source_rows(), _not_null("product_id"), _not_null("tag"), _not_null("action"),
            _in_set("action", FEEDBACK_ACTIONS), _not_null("created_at"), _pseudonym()]


def sales_by_product_period_suite() -> list[ExpectationSpec]:
    """Units, lines and revenue per product and month, all non-negative."""
    return [_not_null("product_id"), _not_null("month"), _at_least("units", 0),
            _at_least("order_lines", 1), _at_least("revenue", 0)]


def sales_by_product_window_suite() -> list[ExpectationSpec]:
    """Units of each product in the current and the previous window."""
    return [_not_null("product_id"),
            ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": "product_id"},
                            "each product once"),
            _at_least("units", 0), _at_least("previous_units", 0)]


def sales_season_peaks_suite() -> list[ExpectationSpec]:
    """Monthly peaks: a month of the year, positive units and ratio."""
    return [_not_null("product_id"), _between("month_of_year", 1, 12), _at_least("units", 1),
            _at_least("ratio", 0)]


def behaviour_tags_suite() -> list[ExpectationSpec]:
    """Behaviour tags: known type, scores in [0, 1], evidence given, each tag once."""
    return [_not_null("product_id"), _not_null("tag"), _in_set("tag_type", TAG_TYPES),
            _between("score", 0.0, 1.0), _not_null("evidence"),
            _unique_together(["product_id", "tag_type", "tag"], "each tag once per product")]


def sales_daily_suite() -> list[ExpectationSpec]:
    """One day's sales per product: each product once, positive units and lines, revenue and
    buyers >= 0, no more buyers than order lines."""
    return [_not_null("sales_date"), _not_null("product_id"),
            _unique_together(["sales_date", "product_id"], "each product once per day"),
            _at_least("units", 1), _at_least("order_lines", 1), _at_least("revenue", 0),
            _at_least("buyers", 0),
            ExpectationSpec("ExpectColumnPairValuesAToBeGreaterThanB",
                            {"column_A": "order_lines", "column_B": "buyers",
                             "or_equal": True},
                            "no more buyers than order lines")]


SUITES: dict[str, Callable[[], list[ExpectationSpec]]] = {
    "sales_daily": sales_daily_suite,
    "raw_sales": raw_sales_suite,
    "raw_feedback": raw_feedback_suite,
    "sales_by_product_period": sales_by_product_period_suite,
    "sales_by_product_window": sales_by_product_window_suite,
    "sales_season_peaks": sales_season_peaks_suite,
    "behaviour_tags": behaviour_tags_suite,
    "product_tags": product_tags_suite,
    "model_tags": model_tags_suite,
    "product_tag_history": product_tag_history_suite,
    "tag_coverage": tag_coverage_suite,
    "tag_consistency": tag_consistency_suite,
    "refiner_ablation": refiner_ablation_suite,
    "catalog_tag_disagreements": catalog_tag_disagreements_suite,
    "product_features": product_features_suite,
    "raw_product_rejects": raw_product_rejects_suite,
    "ingest_files": ingest_files_suite,
    "stg_products": stg_products_suite,
    "image_checks": image_checks_suite,
    "label_rules": label_rules_suite,
    "taxonomy_coverage": taxonomy_coverage_suite,
    "style_lexicon": style_lexicon_suite,
    "raw_products": raw_products_suite,
    "cleaned_products": cleaned_products_suite,
    "rejected_products": rejected_products_suite,
    "row_accounting": row_accounting_suite,
    "product_labels": product_labels_suite,
    "tag_taxonomy": tag_taxonomy_suite,
}

ID_COLUMNS: dict[str, list[str]] = {
    "sales_daily": ["sales_date", "product_id"],
    "raw_sales": ["source_file", "source_line"],
    "raw_feedback": ["source_file", "source_line"],
    "sales_by_product_period": ["product_id", "month"],
    "sales_by_product_window": ["product_id"],
    "sales_season_peaks": ["product_id", "month"],
    "behaviour_tags": ["product_id", "tag"],
    "product_tags": ["product_id", "tag_type", "tag"],
    "model_tags": ["product_id", "tag_type", "facet", "tag"],
    "product_tag_history": ["product_id", "tag_type", "tag", "write_seq"],
    "tag_coverage": ["product_id"],
    "tag_consistency": ["product_id", "tag_type", "facet"],
    "refiner_ablation": ["variant"],
    "catalog_tag_disagreements": ["product_id", "tag_type", "facet"],
    "product_features": ["product_id"],
    "raw_product_rejects": ["source_file", "source_line"],
    "ingest_files": ["source_file", "load_id"],
    "stg_products": ["source_file", "source_line"],
    "image_checks": ["image_ref"],
    "label_rules": ["field"],
    "taxonomy_coverage": ["product_id", "tag_type", "facet", "tag"],
    "style_lexicon": ["tag", "term"],
    "raw_products": ["source_file", "source_line"],
    "cleaned_products": ["product_id"],
    "rejected_products": ["source_file", "source_line"],
    "row_accounting": ["source_file"],
    "product_labels": ["product_id", "tag_type", "facet", "tag"],
    "tag_taxonomy": ["tag_type", "facet", "tag"],
}
