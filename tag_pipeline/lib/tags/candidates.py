"""The tag candidates every write of ``product_tags`` reads: the catalog's tags, the model's
(``model_tags``), sales behaviour tags, with the feedback in force applied.

``feedback_inputs`` checks and reads the tables the candidate SQL needs (a table that may not
exist yet is read as an empty, typed, connection-local view) and builds the feedback state;
``candidate_view`` puts the candidates in a temporary view. Tagging (``tagging``) and feedback
(``feedback``) both call these; neither imports the other. The SELECT statements live in
``dbt_like_sql/writes/``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from tag_pipeline.lib.sql import load_statement, quote_ident
from tag_pipeline.lib.tags.store import SQL_ROOT, TAGS_SCHEMA, TAGS_TABLE

RAW_FEEDBACK_TABLE = "raw_feedback"
BEHAVIOUR_TAGS_TABLE = "behaviour_tags"
TAXONOMY_TABLE = "tag_taxonomy"
MODEL_TAGS_TABLE = "model_tags"
LABELS_TABLE = "product_labels"
PRODUCTS_TABLE = "cleaned_products"
DEFAULT_ACCEPT_FLOOR = 0.95

RAW_FEEDBACK_SCHEMA = {
    "load_id": "VARCHAR", "source_file": "VARCHAR", "source_line": "BIGINT",
    "loaded_at": "TIMESTAMP", "product_id": "VARCHAR", "tag": "VARCHAR", "tag_type": "VARCHAR",
    "action": "VARCHAR", "user_key": "VARCHAR", "created_at": "TIMESTAMP", "note": "VARCHAR",
}

BEHAVIOUR_TAGS_SCHEMA = {
    "product_id": "VARCHAR", "tag": "VARCHAR", "tag_type": "VARCHAR", "facet": "VARCHAR",
    "score": "DOUBLE", "evidence": "VARCHAR",
}

_TAXONOMY_SCHEMA = {"tag": "VARCHAR", "tag_type": "VARCHAR", "facet": "VARCHAR"}

# model_tags: what the tagger wrote per product, the columns of product_tags without the run.
MODEL_TAGS_SCHEMA = {column: dtype for column, dtype in TAGS_SCHEMA.items()
                     if column not in ("run_id", "tagged_at")}


# Every table the feedback and candidate SQL reads: the columns it needs, whether it may be
# missing (then read as an empty view of these columns), and whether it is per product (then a
# scoped candidate set reads only the scope's rows of it).
_INPUTS: dict[str, tuple[dict[str, str], bool, bool]] = {
    RAW_FEEDBACK_TABLE: (RAW_FEEDBACK_SCHEMA, True, True),
    BEHAVIOUR_TAGS_TABLE: (BEHAVIOUR_TAGS_SCHEMA, True, True),
    TAXONOMY_TABLE: (_TAXONOMY_SCHEMA, True, False),
    MODEL_TAGS_TABLE: (MODEL_TAGS_SCHEMA, True, True),
    TAGS_TABLE: (TAGS_SCHEMA, True, True),
    LABELS_TABLE: ({"product_id": "VARCHAR", "tag": "VARCHAR", "tag_type": "VARCHAR",
                    "facet": "VARCHAR", "source": "VARCHAR"}, False, True),
    PRODUCTS_TABLE: ({"product_id": "VARCHAR"}, False, True),
}

# Columns of raw_feedback the SQL does not read (absent from an older table is fine).
_UNREAD = {RAW_FEEDBACK_TABLE: {"user_key"}}

# Connection-local objects (temporary views and tables, registered frames).
FEEDBACK_EVENTS_VIEW = "_feedback_events"
FEEDBACK_STATE_VIEW = "_feedback_state"


class FeedbackError(ValueError):
    """Feedback could not be read or applied (a missing table or column, a bad setting)."""


def feedback_inputs(con: duckdb.DuckDBPyConnection, sql_root: Path = SQL_ROOT, *,
                    scope: str | None = None) -> dict[str, str]:
    """Create the connection-local views the candidate SQL reads; return its ref mapping.

    Every table the feedback SQL reads is checked for the columns it needs. A table that may
    be missing (raw_feedback, behaviour_tags, tag_taxonomy, model_tags, product_tags) and is
    missing is read as an empty temporary view of its columns. With a scope, the per-product
    tables are read through temporary views of the scope's products only. Then the views
    ``_feedback_events`` and ``_feedback_state`` are (re)created over them.

    Args:
        con: The warehouse connection (the views live on it).
        sql_root: The ``dbt_like_sql`` folder.
        scope: None for every product, or a table or view with a ``product_id`` column.

    Returns:
        The relation each ref of ``tag_candidates.sql`` stands for (``feedback_state``
        included).

    Raises:
        FeedbackError: A required table (product_labels, cleaned_products) is missing, or a
            table lacks a column the SQL reads (the message names both).
    """
    refs: dict[str, str] = {}
    for table, (schema, optional, per_product) in _INPUTS.items():
        columns = _columns(con, table)
        if columns is None:
            if not optional:
                raise FeedbackError(f"table {table} does not exist; the tag candidates read "
                                    f"its columns {sorted(schema)}")
            refs[table] = f"_feedback_absent_{table}"
            typed = ", ".join(f"NULL::{dtype.split()[0]} AS {quote_ident(column)}"
                              for column, dtype in schema.items())
            con.execute(f"CREATE OR REPLACE TEMP VIEW {refs[table]} AS "
                        f"SELECT {typed} WHERE false")
            continue
        needed = set(schema) - _UNREAD.get(table, set())
        missing = sorted(needed - set(columns))
        if missing:
            raise FeedbackError(f"table {table} lacks column(s) {missing} that the feedback "
                                f"and tag candidate SQL reads (has {sorted(columns)})")
        refs[table] = table
        if scope is not None and per_product:
            statement, table_ref = (("feedback_raw_in_scope", "raw_feedback")
                                    if table == RAW_FEEDBACK_TABLE
                                    else ("feedback_in_scope", "table"))
            sql = load_statement(sql_root, statement, {}, {table_ref: table, "scope": scope})
            refs[table] = f"_feedback_scoped_{table}"
            con.execute(f"CREATE OR REPLACE TEMP VIEW {refs[table]} AS {sql}")
    events = load_statement(sql_root, "feedback_events", {}, refs)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {FEEDBACK_EVENTS_VIEW} AS {events}")
    state = load_statement(sql_root, "feedback_state", {},
                           {"feedback_events": FEEDBACK_EVENTS_VIEW})
    con.execute(f"CREATE OR REPLACE TEMP VIEW {FEEDBACK_STATE_VIEW} AS {state}")
    return {**refs, "feedback_events": FEEDBACK_EVENTS_VIEW,
            "feedback_state": FEEDBACK_STATE_VIEW}


def drop_feedback_inputs(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary views ``feedback_inputs`` created (views over them go stale)."""
    names = [FEEDBACK_STATE_VIEW, FEEDBACK_EVENTS_VIEW]
    names += [f"_feedback_{kind}_{table}" for kind in ("scoped", "absent") for table in _INPUTS]
    for name in names:
        con.execute(f"DROP VIEW IF EXISTS temp.{name}")


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str] | None:
    """The columns of a table or view, or None when there is none by that name."""
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {quote_ident(table)}").fetchall()
    except duckdb.CatalogException:
        return None
    return [column for column, *_ in described]


CANDIDATES_VIEW = "tag_candidates"


def candidate_view(con: duckdb.DuckDBPyConnection, sql_root: Path,
                   include_catalog_tags: bool = True, *, scope: str | None = None,
                   accept_floor: float = DEFAULT_ACCEPT_FLOOR) -> str:
    """Create the temporary view of all candidate tags; returns its name.

    The candidates are the catalog's tags, the model's (model_tags) and sales behaviour tags
    (behaviour_tags, when it exists), with the feedback in force applied: rejected tags
    removed, added tags pinned, accepted tags' scores raised (see
    ``dbt_like_sql/writes/tag_candidates.sql`` and ``feedback.feedback_inputs``).

    Args:
        con: The warehouse connection (the view and the ones it reads live on it).
        sql_root: The ``dbt_like_sql`` folder.
        include_catalog_tags: Whether the catalog's own tags are candidates.
        scope: None for every product, or a table or view with a ``product_id`` column: the
            candidates of those products only (for ``write_product_tags(..., scope=...)``).
        accept_floor: The score an accepted tag is raised to at least, in [0, 1].

    Raises:
        FeedbackError: accept_floor is outside [0, 1], or a table or column the SQL reads is
            missing.
    """
    if isinstance(accept_floor, bool) or not isinstance(accept_floor, int | float) \
            or not 0.0 <= accept_floor <= 1.0:
        raise FeedbackError(f"candidate_view: accept_floor must be a number in [0, 1], "
                            f"got {accept_floor!r}")
    refs = feedback_inputs(con, sql_root, scope=scope)
    body = load_statement(sql_root, CANDIDATES_VIEW,
                          {"include_catalog_tags": int(include_catalog_tags),
                           "accept_floor": float(accept_floor)}, refs)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {CANDIDATES_VIEW} AS {body}")
    return CANDIDATES_VIEW
