"""product_tags refreshed incrementally: only products whose inputs changed are rebuilt, and
the result always equals a rebuild of every product. Real DuckDB file in tmp_path."""

from __future__ import annotations

from datetime import datetime, timedelta

from tag_pipeline.lib.tags.candidates import candidate_view
from tag_pipeline.lib.tags.incremental import INPUTS_TABLE
from tag_pipeline.lib.tags.store import restore_tags
from tag_pipeline.lib.tags.tagging import refresh_product_tags
from tag_pipeline_tests.lib.feedback_data import (
    create_raw_feedback,
    load_feedback,
    setup_catalog,
)
from tag_pipeline_tests.support import SQL_ROOT

T0 = datetime(2024, 5, 1, 9, 0)
COLUMNS = "product_id, tag, tag_type, facet, round(score, 6), source"


def _refresh(con, day: int, include_catalog_tags: bool = True, full: bool = False):
    return refresh_product_tags(con, SQL_ROOT, include_catalog_tags=include_catalog_tags,
                                run_id=f"r{day}", at=T0 + timedelta(days=day), full=full)


def _same_as_full_rebuild(con, include_catalog_tags: bool = True) -> None:
    view = candidate_view(con, SQL_ROOT, include_catalog_tags)
    expected = con.execute(f"SELECT {COLUMNS} FROM {view} ORDER BY ALL").fetchall()
    stored = con.execute(f"SELECT {COLUMNS} FROM product_tags ORDER BY ALL").fetchall()
    assert stored == expected


def test_only_changed_products_are_rebuilt_and_the_result_equals_a_full_rebuild(con):
    setup_catalog(con)
    create_raw_feedback(con)
    first = _refresh(con, 1)
    assert first.rebuilt_products is None  # no fingerprints yet: every product
    assert first.write.products == 4
    assert con.execute(f"SELECT count(*) FROM {INPUTS_TABLE}").fetchone()[0] == 4

    same = _refresh(con, 2)
    assert (same.rebuilt_products, same.write.history_rows) == (0, 0)

    # the model rescored p1
    con.execute("UPDATE model_tags SET score = 0.9 WHERE product_id = 'p1' AND tag = 'red'")
    rescored = _refresh(con, 3)
    assert rescored.rebuilt_products == 1 and rescored.write.changed == 1
    _same_as_full_rebuild(con)

    # feedback rejects p2's blue
    load_feedback(con, "L1", T0, [("p2", "blue", "color", "reject", T0)])
    rejected = _refresh(con, 4)
    assert rejected.rebuilt_products == 1 and rejected.write.removed == 1
    assert con.execute("SELECT count(*) FROM product_tags WHERE product_id = 'p2' "
                       "AND tag = 'blue'").fetchone()[0] == 0
    _same_as_full_rebuild(con)

    # p4 leaves the catalog (its labels and model tags with it); p5 arrives, catalog tag only
    for table in ("cleaned_products", "product_labels", "model_tags"):
        con.execute(f"DELETE FROM {table} WHERE product_id = 'p4'")
    con.execute("INSERT INTO cleaned_products VALUES ('p5', 'Hat')")
    con.execute("INSERT INTO product_labels VALUES ('p5', 'hat', 'category', 'l1', NULL, 1, "
                "'catalog')")
    moved = _refresh(con, 5)
    assert moved.rebuilt_products == 2
    assert {r[0] for r in con.execute("SELECT DISTINCT product_id FROM product_tags")
            .fetchall()} == {"p1", "p2", "p3", "p5"}
    _same_as_full_rebuild(con)


def test_settings_taxonomy_full_retag_and_restore_rebuild_everything(con):
    setup_catalog(con)
    create_raw_feedback(con)
    _refresh(con, 1)
    assert _refresh(con, 2).rebuilt_products == 0
    # another candidate setting: every product
    assert _refresh(con, 3, include_catalog_tags=False).rebuilt_products is None
    _same_as_full_rebuild(con, include_catalog_tags=False)
    assert _refresh(con, 4, include_catalog_tags=False).rebuilt_products == 0
    # a taxonomy change: every product (feedback adds resolve through it)
    con.execute("INSERT INTO tag_taxonomy VALUES ('plaid', 'pattern', 'pattern', NULL, 1, 1)")
    assert _refresh(con, 5, include_catalog_tags=False).rebuilt_products is None
    # asked for
    assert _refresh(con, 6, include_catalog_tags=False, full=True).rebuilt_products is None
    # a restore writes product_tags from the history: the next refresh rebuilds everything
    restore_tags(con, to_run_id="r1", run_id="restore", at=T0 + timedelta(days=7))
    after = _refresh(con, 8, include_catalog_tags=False)
    assert after.rebuilt_products is None
    _same_as_full_rebuild(con, include_catalog_tags=False)
