"""Feedback on product tags: applied at once, kept on every retag, and turned into labels.

People accept, reject, add or withdraw tags; the feedback ingestion appends those events to
``raw_feedback``. Here they are resolved (a missing tag_type is looked up), reduced to the
feedback in force per (product_id, tag_type, tag) (``feedback_state``: the latest event; a
withdraw cancels the key) and read by the candidate SQL (``tag_candidates``) that every write
of ``product_tags`` uses, full retag or scoped: a rejected tag is removed whatever its source
and stays removed on every retag until withdrawn, an added tag is pinned, an accepted tag's
score is raised. ``apply_feedback`` rewrites only the products a feedback load touched, in one
scoped ``write_product_tags``, so every change lands in ``product_tag_history``. Rows that
cannot be applied are listed with a reason by ``feedback_rejects``, never dropped silently.

Tables that may not exist yet (``raw_feedback``, ``behaviour_tags`` from sales,
``tag_taxonomy``, ``model_tags``, ``product_tags``) are read as empty, typed, connection-local
views instead, so a catalog retag works before any feedback or sales data exists; nothing is
created in the warehouse.

The SELECT statements live in ``dbt_like_sql/writes/feedback_*.sql``; this module runs them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from tag_pipeline.lib.sql import load_statement
from tag_pipeline.lib.tags.candidates import (
    CANDIDATES_VIEW,
    DEFAULT_ACCEPT_FLOOR,
    FEEDBACK_EVENTS_VIEW,
    RAW_FEEDBACK_TABLE,
    FeedbackError,
    candidate_view,
    drop_feedback_inputs,
    feedback_inputs,
)
from tag_pipeline.lib.tags.store import (
    HISTORY_TABLE,
    SQL_ROOT,
    WRITES_TABLE,
    write_product_tags,
)

FEEDBACK_SOURCE = "feedback"

LABEL_ADJUSTMENT_SCHEMA = {"product_id": pl.Utf8, "tag": pl.Utf8, "tag_type": pl.Utf8,
                           "facet": pl.Utf8, "label": pl.Int32}


_SCOPE_TABLE = "_feedback_scope"
_LOADS = "_feedback_loads"


@dataclass(frozen=True)
class FeedbackResult:
    """What one ``apply_feedback`` did.

    ``events`` counts the raw_feedback rows of the applied loads, ``unapplied`` those of them
    that ``feedback_rejects`` lists (they change nothing). ``added``, ``removed`` and
    ``changed`` are the history rows of the write by kind; ``boosted`` is the part of
    ``changed`` that raised a score and kept the source (accepted tags).
    """

    events: int
    unapplied: int
    products: int
    added: int
    removed: int
    changed: int
    boosted: int
    history_rows: int
    seconds: float


def apply_feedback(con: duckdb.DuckDBPyConnection, *, run_id: str, at: datetime,
                   load_ids: list[str] | None = None,
                   accept_floor: float = DEFAULT_ACCEPT_FLOOR,
                   include_catalog_tags: bool = True,
                   sql_root: Path = SQL_ROOT) -> FeedbackResult:
    """Rewrite the tags of the products the given feedback loads touched, in one write.

    The products named by the loads' raw_feedback rows form the scope; their candidate tags
    are built by the same SQL as a full retag (``candidate_view``), restricted to them, and
    written with ``write_product_tags(..., scope=...)``: one transaction, every change in
    product_tag_history, other products untouched. Nothing is scored: model tags are read from
    model_tags. Applying the same feedback again changes nothing and appends no history.

    Args:
        con: The warehouse connection; it must not be inside a transaction.
        run_id: The run applying the feedback (stored on changed rows and history).
        at: When the write happens.
        load_ids: The raw_feedback loads to apply, or None for all feedback.
        accept_floor: The score an accepted tag is raised to at least; use the full retag's.
        include_catalog_tags: As in the full retag (``candidate_view``); use the same value.
        sql_root: The ``dbt_like_sql`` folder.

    Returns:
        The counts of the apply.

    Raises:
        FeedbackError: A table or column the SQL reads is missing, or a setting is bad.
        TagStoreError: The write was refused (see ``write_product_tags``).
    """
    started = time.perf_counter()
    if load_ids is not None and (isinstance(load_ids, str)
                                 or not all(isinstance(x, str) for x in load_ids)):
        raise FeedbackError(f"apply_feedback: load_ids must be a list of strings or None, "
                            f"got {load_ids!r}")
    all_loads = {"all_loads": int(load_ids is None)}
    raw = feedback_inputs(con, sql_root)[RAW_FEEDBACK_TABLE]
    con.register(_LOADS, pa.table({"load_id": pa.array(load_ids or [], pa.string())}))
    try:
        scope_sql = load_statement(sql_root, "feedback_scope", all_loads,
                                   {"raw_feedback": raw, "loads": _LOADS})
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_SCOPE_TABLE} AS {scope_sql}")
        products = int(con.execute(f"SELECT count(*) FROM {_SCOPE_TABLE}").fetchone()[0])
        view = candidate_view(con, sql_root, include_catalog_tags, scope=_SCOPE_TABLE,
                              accept_floor=accept_floor)
        summary = load_statement(sql_root, "feedback_apply_summary", all_loads,
                                 {"feedback_events": FEEDBACK_EVENTS_VIEW, "loads": _LOADS})
        events, unapplied = con.execute(summary).fetchone()
        written = write_product_tags(con, view, run_id=run_id, at=at, scope=_SCOPE_TABLE)
        boosts = load_statement(sql_root, "feedback_boosts", {"run_id": run_id},
                                {"product_tag_history": HISTORY_TABLE,
                                 "product_tag_writes": WRITES_TABLE})
        boosted = int(con.execute(boosts).fetchone()[0])
    finally:
        con.unregister(_LOADS)
        con.execute(f"DROP VIEW IF EXISTS temp.{CANDIDATES_VIEW}")
        drop_feedback_inputs(con)
        con.execute(f"DROP TABLE IF EXISTS temp.{_SCOPE_TABLE}")
    return FeedbackResult(
        events=int(events), unapplied=int(unapplied), products=products,
        added=written.added, removed=written.removed, changed=written.changed,
        boosted=boosted, history_rows=written.history_rows,
        seconds=time.perf_counter() - started,
    )


def feedback_rejects(con: duckdb.DuckDBPyConnection, *, load_ids: list[str] | None = None,
                     sql_root: Path = SQL_ROOT) -> pl.DataFrame:
    """The raw_feedback rows that cannot be applied, each with its reason.

    Args:
        con: The warehouse connection.
        load_ids: Only the rows of these loads, or None for all.
        sql_root: The ``dbt_like_sql`` folder.

    Returns:
        load_id, source_file, source_line, loaded_at, created_at, product_id, tag, tag_type
        (as given), action and reason, ordered by load, file and line.
    """
    try:
        refs = feedback_inputs(con, sql_root)
        sql = load_statement(sql_root, "feedback_rejects", {},
                             {"feedback_events": refs["feedback_events"]})
        rejects = con.execute(sql).pl()
    finally:
        drop_feedback_inputs(con)
    if load_ids is not None:
        rejects = rejects.filter(pl.col("load_id").is_in(load_ids))
    return rejects


def feedback_label_adjustments(con: duckdb.DuckDBPyConnection,
                               sql_root: Path = SQL_ROOT) -> pl.DataFrame:
    """Training label adjustments from the feedback in force.

    Returns:
        product_id, tag, tag_type, facet and label: +1 for an added or accepted tag, -1 for a
        rejected one (withdrawn feedback gives no row), one row per key.
    """
    try:
        refs = feedback_inputs(con, sql_root)
        sql = load_statement(sql_root, "feedback_labels", {},
                             {"feedback_state": refs["feedback_state"]})
        adjustments = con.execute(sql).pl()
    finally:
        drop_feedback_inputs(con)
    return adjustments.cast(LABEL_ADJUSTMENT_SCHEMA)


def apply_to_labels(labels: pl.DataFrame, adjustments: pl.DataFrame) -> pl.DataFrame:
    """Training labels with feedback applied: positives added, rejected labels removed.

    A sigmoid head reads a tag absent from a product's labels as a negative, so removing a
    rejected label is what makes the next training learn the rejection.

    Args:
        labels: product_labels-shaped rows (at least product_id, tag, tag_type, facet; any
            other columns, such as source, parent and level, are kept).
        adjustments: product_id, tag, tag_type, facet, label (+1 or -1), one row per key, as
            ``feedback_label_adjustments`` gives them.

    Returns:
        ``labels`` without the rows whose key (product_id, tag_type, tag) has label -1, plus
        one row per +1 key it lacks, with source 'feedback' (level 1 where labels have a
        level column, other extra columns null); columns as in ``labels`` (plus source).

    Raises:
        FeedbackError: A frame lacks a column, a label is not +1 or -1, or a key has two
            adjustments (the message names the column or an offending key).
    """
    key = ["product_id", "tag_type", "tag"]
    needed = [*key, "facet"]
    for name, frame, columns in (("labels", labels, needed),
                                 ("adjustments", adjustments, [*needed, "label"])):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise FeedbackError(f"apply_to_labels: {name} lacks column(s) {missing} "
                                f"(has {frame.columns})")
    bad = adjustments.filter(~pl.col("label").is_in([1, -1]) | pl.col("label").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise FeedbackError(f"apply_to_labels: label must be +1 or -1, got {row['label']!r} "
                            f"in {bad.height} row(s), e.g. product_id={row['product_id']!r} "
                            f"tag={row['tag']!r}")
    twice = adjustments.filter(pl.struct(key).is_duplicated())
    if twice.height:
        row = twice.row(0, named=True)
        raise FeedbackError(f"apply_to_labels: adjustments hold key (product_id, tag_type, tag) "
                            f"more than once, e.g. ({row['product_id']!r}, "
                            f"{row['tag_type']!r}, {row['tag']!r})")
    adjustments = adjustments.select([*needed, "label"]).cast(
        {c: labels.schema[c] for c in needed})
    kept = labels.join(adjustments.filter(pl.col("label") == -1), on=key, how="anti",
                       nulls_equal=True)
    positives = adjustments.filter(pl.col("label") == 1).drop("label").join(
        kept, on=key, how="anti", nulls_equal=True)
    extra = {"source": pl.lit(FEEDBACK_SOURCE, pl.Utf8)}
    if "level" in labels.columns:
        extra["level"] = pl.lit(1, labels.schema["level"])
    if "source" not in labels.columns:
        kept = kept.with_columns(source=pl.lit(None, pl.Utf8))
    positives = positives.with_columns(**extra)
    return pl.concat([kept, positives], how="diagonal_relaxed").select(kept.columns)


