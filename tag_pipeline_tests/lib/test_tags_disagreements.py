"""The review queue of suspected catalog errors (catalog_tag_disagreements), on a real DuckDB
file: which rows it lists, and how feedback settles them."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import polars as pl
import pytest

from tag_pipeline.lib.tags.candidates import candidate_view
from tag_pipeline.lib.tags.disagreements import DISAGREEMENTS_TABLE, write_disagreements
from tag_pipeline.lib.tags.feedback import apply_feedback
from tag_pipeline.lib.tags.store import write_product_tags
from tag_pipeline_tests.lib.feedback_data import create_raw_feedback, load_feedback, setup_catalog
from tag_pipeline_tests.support import SQL_ROOT

T0 = datetime(2024, 5, 1, 9, 0)

SINGLE = pl.DataFrame({"tag_type": ["category", "color"], "facet": ["l1", "color"]})


@pytest.fixture
def queue(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The feedback tests' catalog, with the model's view of the catalog's own facets: it
    agrees on p1's category, contradicts p2's and p4's, and gives p1 another style than the
    catalog's (style is multi-valued: no contradiction)."""
    setup_catalog(con)
    con.execute("INSERT INTO product_labels VALUES "
                "('p1', 'formal', 'style', 'style', NULL, 1, 'catalog')")
    con.executemany(
        "INSERT INTO model_tags VALUES (?, ?, 'category', 'l1', ?, ?, 'words', 'v1', ?)",
        [("p1", "shirt", 0.9, "model", None), ("p2", "gown", 0.8, "model", None),
         ("p4", "jacket", 0.95, "refiner", "r1")])
    create_raw_feedback(con)
    write_product_tags(con, candidate_view(con, SQL_ROOT, True), run_id="r0", at=T0)
    return con


def rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(f"SELECT product_id, title, facet, catalog_tag, model_tag, "
                       f"model_score, model_source, refiner_version FROM {DISAGREEMENTS_TABLE}"
                       ).fetchall()


def test_lists_contradicted_catalog_values_most_confident_first(queue):
    summary = write_disagreements(queue, SQL_ROOT, SINGLE, min_model_score=0.5)
    assert rows(queue) == [
        ("p4", "Coat", "l1", "coat", "jacket", 0.95, "refiner", "r1"),
        ("p2", "Dress", "l1", "dress", "gown", 0.8, "model", None),
    ]
    assert (summary.rows, summary.by_facet) == (2, {"l1": 2})
    # rebuilt whole: a second write gives the same rows, no duplicates
    write_disagreements(queue, SQL_ROOT, SINGLE, min_model_score=0.5)
    assert len(rows(queue)) == 2
    # the default floor, 0.9, lists only the confident contradiction
    assert write_disagreements(queue, SQL_ROOT, SINGLE).rows == 1
    assert [r[0] for r in rows(queue)] == ["p4"]
    for bad in (1.5, -0.1, True, "0.9"):
        with pytest.raises(ValueError, match="min_model_score must be a number in"):
            write_disagreements(queue, SQL_ROOT, SINGLE, min_model_score=bad)


def test_a_multi_valued_facet_is_not_a_contradiction(queue):
    with_style = pl.concat([SINGLE, pl.DataFrame({"tag_type": ["style"], "facet": ["style"]})])
    write_disagreements(queue, SQL_ROOT, with_style, min_model_score=0.5)
    assert ("p1", "Shirt", "style", "formal", "casual", 0.5, "model", None) in rows(queue)
    write_disagreements(queue, SQL_ROOT, SINGLE, min_model_score=0.5)
    assert {r[0] for r in rows(queue)} == {"p2", "p4"}


def test_feedback_on_either_value_settles_a_row(queue):
    con = queue
    at = T0 + timedelta(hours=1)
    # p4's catalog value confirmed; p2's catalog value rejected (the model's gown is served)
    load_feedback(con, "L1", at, [("p4", "coat", "category", "accept", at),
                                  ("p2", "dress", "category", "reject", at)])
    apply_feedback(con, run_id="fb1", at=at, load_ids=["L1"])
    write_disagreements(con, SQL_ROOT, SINGLE, min_model_score=0.5)
    assert rows(con) == []
    served = con.execute("SELECT tag, source FROM product_tags WHERE product_id = 'p2' "
                         "AND facet = 'l1'").fetchall()
    assert served == [("gown", "model")]
    # the confirmation withdrawn: p4 is back in the queue
    later = at + timedelta(hours=1)
    load_feedback(con, "L2", later, [("p4", "coat", "category", "withdraw", later)])
    apply_feedback(con, run_id="fb2", at=later, load_ids=["L2"])
    write_disagreements(con, SQL_ROOT, SINGLE, min_model_score=0.5)
    assert [r[0] for r in rows(con)] == ["p4"]
    # the model's value rejected instead: settled again
    last = later + timedelta(hours=1)
    load_feedback(con, "L3", last, [("p4", "jacket", "category", "reject", last)])
    apply_feedback(con, run_id="fb3", at=last, load_ids=["L3"])
    write_disagreements(con, SQL_ROOT, SINGLE, min_model_score=0.5)
    assert rows(con) == []


def test_without_a_label_space_the_error_names_the_table(queue):
    with pytest.raises(ValueError, match="table label_space does not exist"):
        write_disagreements(queue, SQL_ROOT)
    with pytest.raises(ValueError, match="tag_type and facet"):
        write_disagreements(queue, SQL_ROOT, SINGLE.rename({"facet": "f"}))
