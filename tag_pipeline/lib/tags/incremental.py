"""Which products' candidate tags can have changed since the last ``product_tags`` run.

A ``product_tags`` run rebuilds the candidate tags (catalog, model, sales, feedback) and writes
the difference. Rebuilding them for the whole catalog costs in proportion to the catalog, not
to what changed: at a million products it is most of a daily retag. So each run keeps a
fingerprint of every product's inputs in ``product_tag_inputs``: a sum of row hashes (and a
row count) per product over its ``cleaned_products`` row, its catalog labels
(``product_labels``), its model tags (``model_tags``), its behaviour tags (``behaviour_tags``)
and its feedback rows (``raw_feedback``). The next run rebuilds and writes only the products
whose fingerprint differs, appeared or disappeared (``write_product_tags(..., scope=...)``).

Every product is rebuilt instead (a full write) when there is no fingerprint yet, when the
settings key differs (the candidate settings, the taxonomy, the text of the candidate SQL), or
when the caller asks for it. The fingerprints are replaced after the write has committed, so a
crash between the two makes the next run rebuild the products concerned again, never skip
them. ``forget_inputs`` drops them, so the next run is full (after ``restore_tags``, for
example, which writes ``product_tags`` from the history).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from tag_pipeline.lib.sql import quote_ident, transaction
from tag_pipeline.lib.warehouse import table_exists

INPUTS_TABLE = "product_tag_inputs"
INPUTS_META_TABLE = "product_tag_inputs_settings"
SCOPE_TABLE = "_retag_scope"
_CURRENT = "_retag_inputs_now"

# (table, SQL of its product id) per input; each row's whole content goes into the hash, but
# for the image path of cleaned_products (its content hash is there: a moved home, whose paths
# `tag-pipeline relocate` rewrote, rebuilds nothing).
_EXCLUDED = {"cleaned_products": ("image_path",)}
_PARTS = (
    ("cleaned_products", "product_id"),
    ("product_labels", "product_id"),
    ("model_tags", "product_id"),
    ("behaviour_tags", "product_id"),
    ("raw_feedback", "nullif(trim(product_id), '')"),
)
# The SQL whose text decides how inputs become candidates.
_CANDIDATE_SQL = ("tag_candidates", "product_tag_candidates", "feedback_events",
                  "feedback_state", "feedback_in_scope", "feedback_raw_in_scope")


def settings_key(con: duckdb.DuckDBPyConnection, sql_root: Path, settings: str) -> str:
    """A digest of ``settings``, the taxonomy and the candidate SQL's text."""
    digest = hashlib.sha256(settings.encode())
    for name in _CANDIDATE_SQL:
        path = sql_root / "writes" / f"{name}.sql"
        digest.update(path.read_bytes() if path.is_file() else b"-")
    if table_exists(con, "tag_taxonomy"):
        taxonomy = con.execute(
            "SELECT coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR, count(*) FROM tag_taxonomy t"
        ).fetchone()
        digest.update(repr(taxonomy).encode())
    return digest.hexdigest()


def changed_scope(con: duckdb.DuckDBPyConnection, sql_root: Path, settings: str) -> str | None:
    """Fingerprint every product's inputs now (kept for ``record_inputs``) and return the
    name of a temporary table of the products to rebuild, or None when every product must be
    (no fingerprints yet, or another settings key)."""
    def source(table: str) -> str:
        present = {r[0] for r in con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()}
        excluded = [c for c in _EXCLUDED.get(table, ()) if c in present]
        if not excluded:
            return quote_ident(table)
        return (f"(SELECT * EXCLUDE ({', '.join(quote_ident(c) for c in excluded)}) "
                f"FROM {quote_ident(table)})")

    parts = [f"SELECT {expr} AS product_id, hash(t)::HUGEINT AS h FROM {source(table)} t"
             for table, expr in _PARTS if table_exists(con, table)]
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {_CURRENT} AS
        SELECT product_id, sum(h) AS fingerprint, count(*) AS n_rows
        FROM ({' UNION ALL '.join(parts)})
        WHERE product_id IS NOT NULL
        GROUP BY product_id
    """)
    key = settings_key(con, sql_root, settings)
    if not (table_exists(con, INPUTS_TABLE) and table_exists(con, INPUTS_META_TABLE)):
        return None
    stored = con.execute(f"SELECT settings_key FROM {INPUTS_META_TABLE}").fetchall()
    if stored != [(key,)]:
        return None
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {SCOPE_TABLE} AS
        SELECT coalesce(n.product_id, o.product_id) AS product_id
        FROM {_CURRENT} n FULL OUTER JOIN {INPUTS_TABLE} o USING (product_id)
        WHERE n.product_id IS NULL OR o.product_id IS NULL
           OR n.fingerprint <> o.fingerprint OR n.n_rows <> o.n_rows
    """)
    # Products with current tags but no inputs left at all (not even a fingerprint).
    if table_exists(con, "product_tags"):
        con.execute(f"""
            INSERT INTO {SCOPE_TABLE}
            SELECT DISTINCT t.product_id FROM product_tags t
            ANTI JOIN {_CURRENT} n USING (product_id)
            ANTI JOIN {SCOPE_TABLE} s USING (product_id)
        """)
    return SCOPE_TABLE


def record_inputs(con: duckdb.DuckDBPyConnection, sql_root: Path, settings: str) -> None:
    """Keep the fingerprints taken by ``changed_scope`` as those of the written tags (call
    after the write has committed)."""
    key = settings_key(con, sql_root, settings)
    with transaction(con):
        con.execute(f"CREATE OR REPLACE TABLE {INPUTS_TABLE} AS SELECT * FROM {_CURRENT}")
        con.execute(f"CREATE OR REPLACE TABLE {INPUTS_META_TABLE} AS "
                    "SELECT ?::VARCHAR AS settings_key, now()::TIMESTAMP AS recorded_at", [key])
    con.execute(f"DROP TABLE IF EXISTS temp.{_CURRENT}")
    con.execute(f"DROP TABLE IF EXISTS temp.{SCOPE_TABLE}")


def forget_inputs(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the fingerprints: the next ``product_tags`` run rebuilds every product."""
    con.execute(f"DROP TABLE IF EXISTS {INPUTS_META_TABLE}")
    con.execute(f"DROP TABLE IF EXISTS {INPUTS_TABLE}")
