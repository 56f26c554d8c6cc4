"""The frames the Great Expectations suites validate, read from the warehouse."""

from __future__ import annotations

import duckdb
import polars as pl

from tag_pipeline.lib.warehouse import read_table


def spec_columns(kwargs_list: list[dict], id_columns: list[str]) -> list[str]:
    """The columns a suite reads (so wide or nested columns are not loaded for nothing)."""
    cols: list[str] = list(id_columns)
    for kwargs in kwargs_list:
        for key in ("column", "column_A", "column_B"):
            if key in kwargs:
                cols.append(kwargs[key])
        for key in ("column_list",):
            cols.extend(kwargs.get(key, []))
    return list(dict.fromkeys(cols))


def labels_with_taxonomy(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """product_labels with ``in_taxonomy``: is its (tag type, facet, tag) in tag_taxonomy."""
    labels = read_table(con, "product_labels")
    taxonomy = read_table(con, "tag_taxonomy", ["tag_type", "facet", "tag"]).with_columns(
        in_taxonomy=pl.lit(True)
    )
    return labels.join(taxonomy, on=["tag_type", "facet", "tag"], how="left").with_columns(
        pl.col("in_taxonomy").fill_null(False)
    )


def stg_products_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """stg_products' fate columns with ``has_reason``."""
    frame = read_table(con, "stg_products", ["source_file", "source_line", "row_status",
                                             "reject_reason", "text_lang"])
    return frame.with_columns(has_reason=pl.col("reject_reason").is_not_null())


def image_checks_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """image_checks with ``has_path``."""
    frame = read_table(con, "image_checks", ["image_ref", "status", "image_path", "width",
                                             "height"])
    return frame.with_columns(has_path=pl.col("image_path").is_not_null())


def product_tags_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """product_tags with ``has_tagger_version``."""
    frame = read_table(con, "product_tags", ["product_id", "tag", "tag_type", "source", "score",
                                             "run_id", "tagged_at", "tagger_version"])
    return frame.with_columns(has_tagger_version=pl.col("tagger_version").is_not_null())


def tag_coverage_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per cleaned product with its ``fate``: tagged, untagged_with_reason, or
    ``missing`` (neither) / ``tagged_and_untagged`` (both), which the suite rejects."""
    products = read_table(con, "cleaned_products", ["product_id"])
    tagged = read_table(con, "product_tags", ["product_id"]).unique().with_columns(
        tagged=pl.lit(True))
    untagged = read_table(con, "untagged_products", ["product_id", "reason"]).with_columns(
        untagged=pl.col("reason").is_not_null())
    frame = products.join(tagged, on="product_id", how="left").join(
        untagged, on="product_id", how="left")
    tagged_col, untagged_col = pl.col("tagged").fill_null(False), pl.col("untagged").fill_null(
        False)
    return frame.select("product_id", fate=pl.when(tagged_col & untagged_col)
                        .then(pl.lit("tagged_and_untagged"))
                        .when(tagged_col).then(pl.lit("tagged"))
                        .when(untagged_col).then(pl.lit("untagged_with_reason"))
                        .otherwise(pl.lit("missing")))


def tag_consistency_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Model and refiner tags counted per (product, tag type, facet) over the facets the
    label space treats as single-valued (its softmax heads)."""
    from tag_pipeline.lib.tags.disagreements import single_valued_facets

    single = single_valued_facets(con)
    tags = read_table(con, "product_tags", ["product_id", "tag_type", "facet", "source"]).filter(
        pl.col("source").is_in(["model", "refiner"]))
    return (tags.join(single, on=["tag_type", "facet"], how="semi")
            .group_by("product_id", "tag_type", "facet").agg(n_tags=pl.len()))


def disagreements_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """catalog_tag_disagreements with ``differs``: the model's value is not the catalog's."""
    frame = read_table(con, "catalog_tag_disagreements",
                       ["product_id", "tag_type", "facet", "catalog_tag", "model_tag",
                        "model_score", "model_source", "tagger_version"])
    return frame.with_columns(differs=pl.col("catalog_tag") != pl.col("model_tag"))


def model_versions(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Distinct ("tagger" | "refiner", version) pairs named in product_tags."""
    frame = read_table(con, "product_tags", ["tagger_version", "refiner_version"]).unique()
    pairs = {("tagger", v) for v in frame["tagger_version"].drop_nulls().to_list()}
    pairs |= {("refiner", v) for v in frame["refiner_version"].drop_nulls().to_list()}
    return sorted(pairs)
