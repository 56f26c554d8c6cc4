"""A tiny tagged catalog and raw_feedback loads written with literal rows, for the feedback and
incremental-tagging tests."""

from __future__ import annotations

from datetime import datetime

import duckdb

# (product_id, tag, tag_type, facet) of the catalog
CATALOG = [("p1", "shirt", "category", "l1"), ("p2", "dress", "category", "l1"),
           ("p4", "coat", "category", "l1")]


# (product_id, tag, tag_type, facet, score) of the model
MODEL = [("p1", "red", "color", "color", 0.6), ("p1", "casual", "style", "style", 0.5),
         ("p2", "blue", "color", "color", 0.7), ("p2", "party", "scene", "scene", 0.4),
         ("p3", "green", "color", "color", 0.3), ("p4", "black", "color", "color", 0.8)]


# (tag, tag_type, facet) known beyond the catalog's own tags; "bold" has two tag types
TAXONOMY = [("red", "color", "color"), ("blue", "color", "color"), ("casual", "style", "style"),
            ("party", "scene", "scene"), ("vintage", "style", "style"),
            ("bold", "style", "style"), ("bold", "pattern", "pattern")]


def setup_catalog(con: duckdb.DuckDBPyConnection, *, taxonomy: bool = True) -> None:
    """cleaned_products, product_labels, model_tags (and tag_taxonomy) with literal rows."""
    con.execute("CREATE TABLE cleaned_products AS SELECT * FROM (VALUES "
                "('p1', 'Shirt'), ('p2', 'Dress'), ('p3', 'Scarf'), ('p4', 'Coat')) "
                "AS v(product_id, title)")
    con.execute("CREATE TABLE product_labels (product_id VARCHAR, tag VARCHAR, "
                "tag_type VARCHAR, facet VARCHAR, parent VARCHAR, level INTEGER, "
                "source VARCHAR)")
    con.executemany("INSERT INTO product_labels VALUES (?, ?, ?, ?, NULL, 1, 'catalog')",
                    CATALOG)
    con.execute("CREATE TABLE model_tags (product_id VARCHAR, tag VARCHAR, tag_type VARCHAR, "
                "facet VARCHAR, score DOUBLE, source VARCHAR, explanation VARCHAR, "
                "tagger_version VARCHAR, refiner_version VARCHAR)")
    con.executemany("INSERT INTO model_tags VALUES (?, ?, ?, ?, ?, 'model', 'words', 'v1', "
                    "NULL)", MODEL)
    if taxonomy:
        con.execute("CREATE TABLE tag_taxonomy AS SELECT tag, tag_type, facet, NULL AS parent, "
                    "1 AS level, count(*) AS product_count FROM product_labels GROUP BY ALL")
        con.executemany("INSERT INTO tag_taxonomy VALUES (?, ?, ?, NULL, 1, 1)", TAXONOMY)


def create_raw_feedback(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE raw_feedback (load_id VARCHAR, source_file VARCHAR, "
                "source_line BIGINT, loaded_at TIMESTAMP, product_id VARCHAR, tag VARCHAR, "
                "tag_type VARCHAR, action VARCHAR, user_key VARCHAR, created_at TIMESTAMP, "
                "note VARCHAR)")


def load_feedback(con: duckdb.DuckDBPyConnection, load_id: str, loaded_at: datetime,
                  rows: list[tuple]) -> None:
    """Append one load: rows are (product_id, tag, tag_type, action, created_at)."""
    con.executemany(
        "INSERT INTO raw_feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'u1', ?, NULL)",
        [(load_id, f"{load_id}.csv", line, loaded_at, pid, tag, tag_type, action, created)
         for line, (pid, tag, tag_type, action, created) in enumerate(rows, start=1)])
