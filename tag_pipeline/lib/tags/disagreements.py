"""Suspected catalog errors: the catalog values the champion model contradicts.

``product_tags`` serves a catalog's own value as a fact (the model only fills the facets the
catalog leaves open), so a wrong catalog value is served as it is. On myntra many of the
tagger's remaining "errors" against the catalog are the catalog's: a watch labelled "Free
Gifts", "John Players Men Beige Shorts" labelled Trousers, a colour the title contradicts.
``write_disagreements`` lists, per product and single-valued facet, where the served catalog
value and the model's tag differ and the model gives its value a score of at least
``min_model_score`` (default 0.9; on the demo catalog every contradicted colour scored below
0.5, and none of the titles read names the model's colour: guesses, not evidence), with the
score and the model's explanation, the most confident first
(``dbt_like_sql/writes/catalog_tag_disagreements.sql``).

A reviewer settles a row with feedback: rejecting the catalog value opens the facet to the
model (and drops the value from the next training's labels); accepting it, or rejecting the
model's tag, says the catalog is right. Any feedback in force on either value takes the row out
of the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from tag_pipeline.lib.sql import load_statement, quote_ident, transaction
from tag_pipeline.lib.tags.candidates import drop_feedback_inputs, feedback_inputs
from tag_pipeline.lib.tags.store import SQL_ROOT

DISAGREEMENTS_TABLE = "catalog_tag_disagreements"
LABEL_SPACE_TABLE = "label_space"
# The least model score of a listed disagreement (the asset's config may lower or raise it).
DEFAULT_MIN_MODEL_SCORE = 0.9
_SINGLE_VALUED_VIEW = "_single_valued_facets"


@dataclass(frozen=True)
class DisagreementSummary:
    """What ``write_disagreements`` wrote: rows in all and per facet."""

    rows: int
    by_facet: dict[str, int]


def single_valued_facets(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """(tag_type, facet) of every facet the label space of the last training treats as
    single-valued (its softmax heads); the consistency check of product_tags reads them too.

    Raises:
        ValueError: There is no label_space table (``product_features`` writes it).
    """
    from tag_pipeline.lib.models.labels import SOFTMAX, LabelSpace

    try:
        stored = con.execute(f"SELECT space_json FROM {LABEL_SPACE_TABLE}").fetchall()
    except duckdb.CatalogException as exc:
        raise ValueError(f"table {LABEL_SPACE_TABLE} does not exist: the single-valued facets "
                         "come from the label space that product_features writes (run "
                         "model_job in this warehouse)") from exc
    if len(stored) != 1:
        raise ValueError(f"table {LABEL_SPACE_TABLE} must hold one label space, has "
                         f"{len(stored)} rows")
    space = LabelSpace.from_json(stored[0][0])
    return pl.DataFrame(
        [{"tag_type": h.tag_type, "facet": f} for h in space.heads if h.kind == SOFTMAX
         for f in h.facets],
        schema={"tag_type": pl.Utf8, "facet": pl.Utf8})


def write_disagreements(con: duckdb.DuckDBPyConnection, sql_root: Path = SQL_ROOT,
                        single_valued: pl.DataFrame | None = None,
                        min_model_score: float = DEFAULT_MIN_MODEL_SCORE
                        ) -> DisagreementSummary:
    """Rebuild ``catalog_tag_disagreements`` from product_tags, model_tags and the feedback in
    force, in one transaction (readers see the old table or the new one).

    Args:
        con: The warehouse connection.
        sql_root: The ``dbt_like_sql`` folder.
        single_valued: (tag_type, facet) of the single-valued facets; default: the label
            space's (``single_valued_facets``).
        min_model_score: The least score of the model's value for a row to be listed, in
            [0, 1].

    Raises:
        ValueError: min_model_score is not in [0, 1], or there is no label space to read
            the single-valued facets from.
        FeedbackError: A table or column the feedback SQL reads is missing.
    """
    if isinstance(min_model_score, bool) or not isinstance(min_model_score, int | float) \
            or not 0.0 <= min_model_score <= 1.0:
        raise ValueError(f"min_model_score must be a number in [0, 1], got {min_model_score!r}")
    facets = single_valued_facets(con) if single_valued is None else single_valued
    if set(facets.columns) != {"tag_type", "facet"}:
        raise ValueError(f"single_valued must have the columns tag_type and facet, has "
                         f"{facets.columns}")
    refs = feedback_inputs(con, sql_root)
    con.register(_SINGLE_VALUED_VIEW, facets.select("tag_type", "facet"))
    try:
        sql = load_statement(sql_root, DISAGREEMENTS_TABLE,
                             {"min_model_score": float(min_model_score)},
                             {**refs, "single_valued_facets": _SINGLE_VALUED_VIEW})
        with transaction(con, "write_disagreements"):
            con.execute(f"CREATE OR REPLACE TABLE {quote_ident(DISAGREEMENTS_TABLE)} AS {sql}")
    finally:
        con.unregister(_SINGLE_VALUED_VIEW)
        drop_feedback_inputs(con)
    counts = con.execute(f"SELECT facet, count(*) FROM {quote_ident(DISAGREEMENTS_TABLE)} "
                         "GROUP BY facet ORDER BY facet").fetchall()
    return DisagreementSummary(rows=sum(n for _, n in counts),
                               by_facet={facet: n for facet, n in counts})
