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
