"""Feedback applied to product_tags, kept on retags and turned into training labels, on a real
DuckDB file in tmp_path."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import polars as pl
import pytest

from tag_pipeline.lib.tags.candidates import candidate_view
from tag_pipeline.lib.tags.feedback import (
    FeedbackError,
    apply_feedback,
    apply_to_labels,
    feedback_label_adjustments,
    feedback_rejects,
)
from tag_pipeline.lib.tags.store import write_product_tags
from tag_pipeline_tests.lib.feedback_data import create_raw_feedback, load_feedback, setup_catalog
from tag_pipeline_tests.support import SQL_ROOT

T0 = datetime(2024, 5, 1, 9, 0)


def retag(con: duckdb.DuckDBPyConnection, run_id: str, at: datetime):
    """A full retag as the product_tags asset does it."""
    return write_product_tags(con, candidate_view(con, SQL_ROOT, True), run_id=run_id, at=at)


def tags_of(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], tuple[float, str]]:
    rows = con.execute("SELECT product_id, tag, score, source FROM product_tags").fetchall()
    return {(pid, tag): (round(score, 6), source) for pid, tag, score, source in rows}


def history_of(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[tuple[str, str], str]:
    rows = con.execute("SELECT product_id, tag, change FROM product_tag_history "
                       "WHERE run_id = ?", [run_id]).fetchall()
    return {(pid, tag): change for pid, tag, change in rows}


FIRST_LOAD = [
    ("p1", "red", "color", "reject", T0),            # model tag rejected
    ("p1", "vintage", None, "add", T0),              # tag_type from tag_taxonomy
    ("p2", "party", "scene", "accept", T0),          # model score 0.4 raised
    ("p2", "dress", "category", "reject", T0),       # catalog tag rejected
    ("p3", "green", None, "add", T0),                # tag_type from the product's model tags
    ("p3", "bold", None, "add", T0),                 # two tag types in taxonomy: unresolvable
]


@pytest.fixture
def warehouse(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The catalog tagged once (run r0), and a raw_feedback table with one load L1."""
    setup_catalog(con)
    create_raw_feedback(con)
    retag(con, "r0", T0)
    load_feedback(con, "L1", T0 + timedelta(hours=1), FIRST_LOAD)
    return con


BEFORE = {("p1", "shirt"): (1.0, "catalog"), ("p1", "red"): (0.6, "model"),
          ("p1", "casual"): (0.5, "model"), ("p2", "dress"): (1.0, "catalog"),
          ("p2", "blue"): (0.7, "model"), ("p2", "party"): (0.4, "model"),
          ("p3", "green"): (0.3, "model"), ("p4", "coat"): (1.0, "catalog"),
          ("p4", "black"): (0.8, "model")}
AFTER_L1 = {**{k: v for k, v in BEFORE.items() if k not in {("p1", "red"), ("p2", "dress")}},
            ("p1", "vintage"): (1.0, "feedback"), ("p2", "party"): (0.95, "model"),
            ("p3", "green"): (1.0, "feedback")}


def test_one_apply_removes_pins_and_boosts_with_history(warehouse):
    con = warehouse
    assert tags_of(con) == BEFORE
    result = apply_feedback(con, run_id="fb1", at=T0 + timedelta(hours=2), load_ids=["L1"])
    assert tags_of(con) == AFTER_L1
    assert history_of(con, "fb1") == {
        ("p1", "red"): "removed", ("p2", "dress"): "removed", ("p1", "vintage"): "added",
        ("p2", "party"): "changed", ("p3", "green"): "changed"}
    assert (result.events, result.unapplied, result.products) == (6, 1, 3)
    assert (result.added, result.removed, result.changed, result.boosted) == (1, 2, 2, 1)
    assert result.history_rows == 5 and result.seconds > 0
    vintage = con.execute("SELECT tag_type, facet, explanation, run_id FROM product_tags "
                          "WHERE tag = 'vintage'").fetchone()
    assert vintage == ("style", "style", "added by feedback", "fb1")
    # p4 was not touched by the load: its rows keep the run that wrote them.
    assert set(con.execute("SELECT run_id FROM product_tags WHERE product_id = 'p4'")
               .fetchall()) == {("r0",)}
    assert con.execute("SELECT scope FROM product_tag_writes WHERE run_id = 'fb1'").fetchone()[0]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE temporary "
                       "AND NOT internal").fetchone()[0] == 0


def test_reapplying_the_same_feedback_appends_no_history(warehouse):
    con = warehouse
    apply_feedback(con, run_id="fb1", at=T0 + timedelta(hours=2), load_ids=["L1"])
    table = con.sql("SELECT * FROM product_tags ORDER BY ALL").pl()
    for run_id, load_ids in (("fb2", ["L1"]), ("fb3", None)):
        again = apply_feedback(con, run_id=run_id, at=T0 + timedelta(hours=3), load_ids=load_ids)
        assert (again.history_rows, again.boosted, again.events) == (0, 0, 6)
    assert con.sql("SELECT * FROM product_tags ORDER BY ALL").pl().equals(table)
    assert tags_of(con)[("p2", "party")] == (0.95, "model")  # raised once, not twice


def test_rejected_tags_stay_rejected_on_full_retags_until_withdrawn(warehouse):
    con = warehouse
    apply_feedback(con, run_id="fb1", at=T0 + timedelta(hours=2), load_ids=["L1"])
    # The same full retag the asset runs changes nothing: feedback is part of the candidates.
    assert retag(con, "r1", T0 + timedelta(days=1)).history_rows == 0
    # A new model version rescores everything and proposes red again: still rejected.
    con.execute("UPDATE model_tags SET score = score / 2, tagger_version = 'v2'")
    second = retag(con, "r2", T0 + timedelta(days=2))
    assert second.removed == 0
    table = tags_of(con)
    assert ("p1", "red") not in table and ("p2", "dress") not in table
    assert table[("p2", "party")] == (0.95, "model")      # accepted: floor holds
    assert table[("p3", "green")] == (1.0, "feedback")   # added: still pinned
    assert table[("p2", "blue")] == (0.35, "model")
    # Withdrawing the rejection (tag_type left out) restores red on the next retag.
    load_feedback(con, "L2", T0 + timedelta(days=3),
                  [("p1", "red", None, "withdraw", T0 + timedelta(days=3))])
    restored = retag(con, "r3", T0 + timedelta(days=4))
    assert history_of(con, "r3") == {("p1", "red"): "added"}
    assert restored.history_rows == 1 and tags_of(con)[("p1", "red")] == (0.3, "model")


def test_latest_event_wins_and_ties_go_to_the_later_load(warehouse):
    con = warehouse
    late = T0 + timedelta(days=1)
    load_feedback(con, "L2", late, [
        ("p2", "dress", "category", "accept", late),          # newer than L1's reject
        ("p2", "blue", "color", "reject", T0 - timedelta(1)),  # older than the accept below
        ("p2", "blue", "color", "accept", T0),
    ])
    load_feedback(con, "L3", late + timedelta(hours=1), [
        ("p1", "casual", "style", "reject", late),
    ])
    load_feedback(con, "L4", late + timedelta(hours=2), [
        ("p1", "casual", "style", "accept", late),            # same created_at, later load
    ])
    apply_feedback(con, run_id="fb", at=late + timedelta(hours=3))
    table = tags_of(con)
    assert table[("p2", "dress")] == (1.0, "catalog")
    assert table[("p2", "blue")] == (0.95, "model")
    assert table[("p1", "casual")] == (0.95, "model")


def test_unresolvable_and_invalid_feedback_is_reported_with_its_reason(warehouse):
    con = warehouse
    load_feedback(con, "L2", T0 + timedelta(days=1), [
        ("p9", "vintage", "style", "add", T0),       # not a catalog product
        ("p1", "neon", None, "reject", T0),          # in no taxonomy and not on the product
        ("p1", "red", "color", "like", T0),          # unknown action
        (None, "red", "color", "reject", T0),        # no product
        ("p8", "red", "color", "reject", T0),        # an unknown product: never applied
    ])
    rejects = feedback_rejects(con)
    reasons = {(r["load_id"], r["source_line"]): r["reason"]
               for r in rejects.iter_rows(named=True)}
    assert reasons[("L1", 6)] == ("tag_type is missing and cannot be resolved: tag 'bold' has "
                                  "tag types pattern, style in tag_taxonomy and is not on the "
                                  "product")
    assert reasons[("L2", 1)] == "product_id 'p9' is not in cleaned_products"
    assert reasons[("L2", 2)] == ("tag_type is missing and cannot be resolved: tag 'neon' is "
                                  "not in tag_taxonomy and is not on the product")
    assert reasons[("L2", 3)] == "action 'like' is not one of accept, reject, add, withdraw"
    assert reasons[("L2", 4)] == "product_id is missing"
    assert reasons[("L2", 5)] == "product_id 'p8' is not in cleaned_products"
    assert len(reasons) == 6
    assert feedback_rejects(con, load_ids=["L1"]).height == 1
    result = apply_feedback(con, run_id="fb", at=T0 + timedelta(days=2), load_ids=["L2"])
    assert (result.events, result.unapplied, result.products) == (5, 5, 3)
    # L2 applies nothing itself, but rebuilding p1 applies all of p1's feedback in force (L1).
    assert history_of(con, "fb") == {("p1", "red"): "removed", ("p1", "vintage"): "added"}
    assert not [key for key in tags_of(con) if key[0] in ("p8", "p9")]


def test_catalog_retag_works_before_feedback_sales_and_taxonomy_exist(con):
    setup_catalog(con, taxonomy=False)
    first = retag(con, "r0", T0)
    assert first.rows == len(BEFORE) and tags_of(con) == BEFORE
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert not {"raw_feedback", "behaviour_tags", "tag_taxonomy"} & tables
    assert apply_feedback(con, run_id="fb", at=T0).products == 0
    assert feedback_label_adjustments(con).height == 0


def test_sales_behaviour_tags_join_unless_rejected_or_taken(warehouse):
    con = warehouse
    con.execute("CREATE TABLE behaviour_tags AS SELECT * FROM (VALUES "
                "('p1', 'bestseller', 'behaviour', 'sales', 0.9, 'top 1% of units'), "
                "('p2', 'bestseller', 'behaviour', 'sales', 0.8, 'top 5% of units'), "
                "('p2', 'blue', 'color', 'color', 0.99, 'sells with blue'), "
                "('p4', 'shirt', 'category', 'l1', 0.7, 'bought with shirts'), "
                "('p9', 'bestseller', 'behaviour', 'sales', 0.9, 'gone')) "
                "AS v(product_id, tag, tag_type, facet, score, evidence)")
    load_feedback(con, "L2", T0 + timedelta(days=1),
                  [("p2", "bestseller", None, "reject", T0 + timedelta(days=1))])
    retag(con, "r1", T0 + timedelta(days=2))
    table = tags_of(con)
    assert table[("p1", "bestseller")] == (0.9, "sales")
    assert ("p2", "bestseller") not in table          # rejected (tag_type from the product)
    assert table[("p2", "blue")] == (0.7, "model")    # the model's row of that key stays
    assert ("p4", "shirt") not in table               # the catalog fills that facet
    assert not [key for key in table if key[0] == "p9"]
    explanation = con.execute("SELECT explanation FROM product_tags WHERE product_id = 'p1' "
                              "AND tag = 'bestseller'").fetchone()[0]
    assert explanation == "top 1% of units"


def test_a_rejected_catalog_tag_opens_its_facet_to_the_model(warehouse):
    con = warehouse
    con.execute("INSERT INTO model_tags VALUES ('p2', 'gown', 'category', 'l1', 0.8, 'model', "
                "NULL, 'v1', NULL)")
    assert ("p2", "gown") not in tags_of(con)  # not yet: the catalog fills category/l1
    apply_feedback(con, run_id="fb1", at=T0 + timedelta(hours=2), load_ids=["L1"])
    assert tags_of(con)[("p2", "gown")] == (0.8, "model")


def test_accept_floor_and_scope_are_passed_through_candidate_view(warehouse):
    con = warehouse
    con.execute("CREATE TABLE only_p2 AS SELECT 'p2' AS product_id")
    view = candidate_view(con, SQL_ROOT, True, scope="only_p2", accept_floor=0.8)
    rows = con.execute(f"SELECT product_id, tag, score FROM {view} ORDER BY tag").fetchall()
    assert rows == [("p2", "blue", 0.7), ("p2", "party", 0.8)]
    with pytest.raises(FeedbackError, match="accept_floor"):
        candidate_view(con, SQL_ROOT, True, accept_floor=1.5)


def test_missing_columns_and_tables_are_named(con):
    setup_catalog(con)
    con.execute("CREATE TABLE raw_feedback (load_id VARCHAR, product_id VARCHAR, tag VARCHAR)")
    with pytest.raises(FeedbackError, match=r"raw_feedback lacks column\(s\) \['action'"):
        candidate_view(con, SQL_ROOT)
    con.execute("DROP TABLE raw_feedback")
    con.execute("DROP TABLE cleaned_products")
    with pytest.raises(FeedbackError, match="cleaned_products does not exist"):
        apply_feedback(con, run_id="fb", at=T0)


# --- training labels ----------------------------------------------------------------------------

def test_label_adjustments_follow_the_feedback_in_force(warehouse):
    con = warehouse
    load_feedback(con, "L2", T0 + timedelta(days=1),
                  [("p2", "party", "scene", "withdraw", T0 + timedelta(days=1))])
    adjustments = feedback_label_adjustments(con)
    assert adjustments.columns == ["product_id", "tag", "tag_type", "facet", "label"]
    assert adjustments.rows() == [
        ("p1", "red", "color", "color", -1), ("p1", "vintage", "style", "style", 1),
        ("p2", "dress", "category", "l1", -1), ("p3", "green", "color", "feedback", 1),
    ]


def test_apply_to_labels_adds_positives_and_removes_rejections(warehouse):
    con = warehouse
    labels = con.sql("SELECT * FROM product_labels ORDER BY product_id").pl()
    adjusted = apply_to_labels(labels, feedback_label_adjustments(con))
    assert adjusted.columns == labels.columns
    got = {(r["product_id"], r["tag"]): (r["source"], r["level"])
           for r in adjusted.iter_rows(named=True)}
    assert got == {("p1", "shirt"): ("catalog", 1), ("p4", "coat"): ("catalog", 1),
                   ("p1", "vintage"): ("feedback", 1), ("p2", "party"): ("feedback", 1),
                   ("p3", "green"): ("feedback", 1)}
    # A positive already among the labels is not added twice.
    again = apply_to_labels(adjusted, feedback_label_adjustments(con))
    assert again.sort(adjusted.columns).equals(adjusted.sort(adjusted.columns))


def test_apply_to_labels_refuses_bad_adjustments():
    labels = pl.DataFrame({"product_id": ["p1"], "tag": ["red"], "tag_type": ["color"],
                           "facet": ["color"]})
    bad = labels.with_columns(label=pl.lit(2))
    with pytest.raises(FeedbackError, match=r"\+1 or -1, got 2.*product_id='p1' tag='red'"):
        apply_to_labels(labels, bad)
    twice = pl.concat([labels.with_columns(label=pl.lit(1)), labels.with_columns(label=pl.lit(-1))])
    with pytest.raises(FeedbackError, match=r"more than once.*'p1', 'color', 'red'"):
        apply_to_labels(labels, twice)
    with pytest.raises(FeedbackError, match=r"labels lacks column\(s\) \['facet'\]"):
        apply_to_labels(labels.drop("facet"), bad)
    plain = apply_to_labels(labels, labels.with_columns(label=pl.lit(-1)))
    assert plain.height == 0 and plain.columns == [*labels.columns, "source"]
