"""product_tags and product_tag_history, written for real into a DuckDB file in tmp_path."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest

from tag_pipeline.lib.sql import SqlModelError, discover_models, load_statement
from tag_pipeline.lib.tags import store
from tag_pipeline.lib.tags.store import (
    CANDIDATE_COLUMNS,
    TagStoreError,
    TagWriteResult,
    export_product_tags,
    restore_tags,
    tags_as_of,
    write_product_tags,
)
from tag_pipeline_tests.support import REPO_ROOT, SQL_ROOT

T0 = datetime(2024, 3, 1, 12, 0, 0)
KEY = ["product_id", "tag_type", "tag"]
VALUE_COLUMNS = ["product_id", "tag", "tag_type", "facet", "score", "source", "tagger_version",
                 "refiner_version", "explanation"]


def tags(*rows: tuple) -> pl.DataFrame:
    """Candidates from (product_id, tag, tag_type, score, source[, explanation, tagger_version,
    refiner_version, facet]) tuples."""
    full = []
    for row in rows:
        pid, tag, tag_type, score, source, *rest = row
        explanation, tagger, refiner, facet = (*rest, *[None] * (4 - len(rest)))
        full.append((pid, tag, tag_type, facet or tag_type, score, source, explanation,
                     tagger if tagger is not None else "t1", refiner))
    return pl.DataFrame(full, schema=CANDIDATE_COLUMNS, orient="row")


BASE = tags(
    ("p1", "red", "color", 0.9, "model", "red words"),
    ("p1", "shirt", "category", 1.0, "catalog"),
    ("p2", "blue", "color", 0.6, "model", "blue words"),
    ("p2", "party", "scene", 0.4, "refiner", None, "t1", "r1"),
    ("p3", "casual", "style", 0.7, "model"),
)


@pytest.fixture(params=["in_place", "rebuild"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test both ways a write can apply a change to product_tags: deleting and inserting
    the changed keys in place, or rebuilding the table whole (as for most rows changing)."""
    monkeypatch.setattr(store, "REBUILD_FRACTION", 1e9 if request.param == "in_place" else 0.0)
    return request.param


def current(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql("SELECT * FROM product_tags ORDER BY product_id, tag_type, tag").pl()


def history(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql("SELECT * FROM product_tag_history "
                   "ORDER BY write_seq, product_id, tag_type, tag").pl()


def table_oid(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT table_oid FROM duckdb_tables() "
                       "WHERE table_name = 'product_tags'").fetchone()[0]


def events(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[tuple[str, str], str]:
    rows = con.execute("SELECT product_id, tag, change FROM product_tag_history "
                       "WHERE run_id = ?", [run_id]).fetchall()
    return {(pid, tag): change for pid, tag, change in rows}


def generate_candidates(con: duckdb.DuckDBPyConnection, table: str, products: int,
                        tags_per_product: int, shift: float = 0.0) -> None:
    """A candidate table generated inside DuckDB."""
    con.execute(f"""
        CREATE OR REPLACE TABLE {table} AS
        SELECT 'p' || lpad(CAST(p AS VARCHAR), 8, '0') AS product_id,
            'tag' || CAST((p * 31 + t * 7) % 50 AS VARCHAR) AS tag,
            'type' || CAST(t AS VARCHAR) AS tag_type, 'facet' AS facet,
            ((p * 17 + t * 3) % 1000) / 1000.0 * (1 - {shift}) AS score, 'model' AS source,
            'because of words' AS explanation, 'v1' AS tagger_version,
            NULL::VARCHAR AS refiner_version
        FROM range({products}) AS r(p), range({tags_per_product}) AS s(t)
    """)


# --- validation -------------------------------------------------------------------------------

@pytest.mark.parametrize(("candidates", "column", "example"), [
    (BASE.drop("score"), "score", "missing"),
    (BASE.with_columns(product_id=pl.when(pl.col("tag") == "blue").then(None)
                       .otherwise(pl.col("product_id"))), "product_id", "blue"),
    (BASE.with_columns(tag=pl.when(pl.col("product_id") == "p3").then(None)
                       .otherwise(pl.col("tag"))), "tag", "p3"),
    (BASE.with_columns(tag_type=pl.when(pl.col("tag") == "party").then(None)
                       .otherwise(pl.col("tag_type"))), "tag_type", "party"),
    (BASE.with_columns(score=pl.when(pl.col("tag") == "red").then(1.5)
                       .otherwise(pl.col("score"))), "score", "red"),
    (BASE.with_columns(score=pl.when(pl.col("tag") == "red").then(-0.1)
                       .otherwise(pl.col("score"))), "score", "red"),
    (BASE.with_columns(score=pl.when(pl.col("tag") == "blue").then(math.nan)
                       .otherwise(pl.col("score"))), "score", "blue"),
    (BASE.with_columns(source=pl.when(pl.col("tag") == "casual").then(pl.lit("guess"))
                       .otherwise(pl.col("source"))), "source", "casual"),
    (pl.concat([BASE, BASE.filter(pl.col("tag") == "party")
                .with_columns(score=pl.lit(0.1))]), "product_id, tag_type, tag", "party"),
    (BASE.with_columns(score=pl.col("score").cast(pl.Utf8)), "score", "VARCHAR"),
])
def test_invalid_candidates_are_refused_naming_column_and_row(con, candidates, column, example):
    write_product_tags(con, BASE, run_id="r1", at=T0)
    before, oid = current(con), table_oid(con)
    with pytest.raises(TagStoreError) as raised:
        write_product_tags(con, candidates, run_id="bad", at=T0 + timedelta(1))
    message = str(raised.value)
    assert f"'{column}'" in message or f"['{column}']" in message
    assert example in message
    assert current(con).equals(before) and table_oid(con) == oid
    assert history(con).height == 5
    assert con.execute("SELECT count(*) FROM product_tag_writes").fetchone()[0] == 1


def test_unknown_candidate_table_and_bad_scope_are_refused(con):
    with pytest.raises(TagStoreError, match="no_such_table"):
        write_product_tags(con, "no_such_table", run_id="r1", at=T0)
    con.execute("CREATE TABLE wrong_scope AS SELECT 'p1' AS sku")
    with pytest.raises(TagStoreError, match="wrong_scope.*product_id"):
        write_product_tags(con, BASE, run_id="r1", at=T0, scope="wrong_scope")


# --- writes -----------------------------------------------------------------------------------

def test_first_write_adds_every_tag_with_its_run(con):
    result = write_product_tags(con, BASE, run_id="r1", at=T0)
    assert (result.rows, result.products, result.added, result.history_rows) == (5, 3, 5, 5)
    assert (result.removed, result.changed, result.unchanged) == (0, 0, 0)
    table = current(con)
    assert table.columns == [*CANDIDATE_COLUMNS, "run_id", "tagged_at"]
    assert set(table["run_id"]) == {"r1"} and set(table["tagged_at"]) == {T0}
    hist = history(con)
    assert set(hist["change"]) == {"added"} and set(hist["write_seq"]) == {1}
    assert hist["old_score"].null_count() == 5
    party = hist.filter(pl.col("tag") == "party").row(0, named=True)
    assert (party["new_score"], party["new_source"], party["refiner_version"]) == \
        (0.4, "refiner", "r1")


def test_identical_rewrite_is_byte_identical_and_appends_no_history(con):
    write_product_tags(con, BASE, run_id="r1", at=T0)
    before, oid = current(con), table_oid(con)
    # The same tags as a polars frame, an Arrow table and a DuckDB table, in another order.
    con.register("base_frame", BASE)
    con.execute("CREATE TABLE base_copy AS SELECT * FROM base_frame ORDER BY tag DESC")
    con.execute("CREATE TEMP VIEW base_view AS SELECT * FROM base_copy WHERE score >= 0")
    inputs = [BASE, BASE.reverse().to_arrow(), "base_copy", "base_view"]
    for run, candidates in enumerate(inputs, start=2):
        result = write_product_tags(con, candidates, run_id=f"r{run}", at=T0 + timedelta(run))
        assert (result.added, result.removed, result.changed) == (0, 0, 0)
        assert (result.unchanged, result.history_rows, result.rows) == (5, 0, 5)
    after = current(con)
    assert after.equals(before) and table_oid(con) == oid
    assert set(after["run_id"]) == {"r1"}
    assert history(con).height == 5
    writes = con.sql("SELECT write_seq, run_id FROM product_tag_writes ORDER BY 1").fetchall()
    assert writes == [(1, "r1"), (2, "r2"), (3, "r3"), (4, "r4"), (5, "r5")]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0


def test_added_removed_changed_and_updated_rows(con, write_path):
    write_product_tags(con, BASE, run_id="r1", at=T0)
    oid = table_oid(con)
    new = tags(
        ("p1", "red", "color", 0.9 + 1e-8, "model", "red words"),    # within 1e-6: unchanged
        ("p1", "shirt", "category", 1.0, "catalog", "now explained"),  # explanation only
        ("p2", "blue", "color", 0.5, "model", "blue words"),          # score moved
        ("p2", "party", "scene", 0.4, "refiner", None, "t1", "r2"),    # refiner version
        ("p3", "casual", "style", 0.7, "feedback"),                    # source
        ("p4", "green", "color", 0.3, "model"),                        # new
    )  # p1/red kept, p3 has no 'removed'; nothing of BASE is missing, so add one removal:
    new = new.filter(~((pl.col("product_id") == "p2") & (pl.col("tag") == "blue")))
    result = write_product_tags(con, new, run_id="r2", at=T0 + timedelta(1))
    assert (result.added, result.removed, result.changed, result.unchanged) == (1, 1, 2, 2)
    assert result.history_rows == 4 == history(con).height - 5
    assert events(con, "r2") == {("p4", "green"): "added", ("p2", "blue"): "removed",
                                 ("p2", "party"): "changed", ("p3", "casual"): "changed"}
    removed = history(con).filter(pl.col("change") == "removed").row(0, named=True)
    assert (removed["old_score"], removed["new_score"], removed["new_source"]) == (0.6, None, None)
    assert (removed["tagger_version"], removed["explanation"]) == ("t1", "blue words")
    table = current(con)
    runs = dict(zip(table["tag"], table["run_id"], strict=True))
    assert runs == {"red": "r1", "shirt": "r1", "party": "r2", "casual": "r2", "green": "r2"}
    shirt = table.filter(pl.col("tag") == "shirt").row(0, named=True)
    assert shirt["explanation"] == "now explained" and shirt["tagged_at"] == T0
    assert table.filter(pl.col("tag") == "red")["score"][0] == pytest.approx(0.9)
    assert (table_oid(con) == oid) == (write_path == "in_place")


def test_scoped_write_replaces_only_its_products(con, write_path):
    write_product_tags(con, BASE, run_id="r1", at=T0)
    others = current(con).filter(pl.col("product_id") != "p2")
    con.execute("CREATE TABLE retag AS SELECT * FROM (VALUES ('p2'), ('p5')) AS v(product_id)")
    new = tags(("p2", "green", "color", 0.8, "model"), ("p5", "dress", "category", 1.0, "catalog"))
    result = write_product_tags(con, new, run_id="r2", at=T0 + timedelta(1), scope="retag")
    assert (result.added, result.removed, result.changed) == (2, 2, 0)
    assert (result.rows, result.products) == (5, 4)
    table = current(con)
    assert table.filter(pl.col("product_id").is_in(["p1", "p3"])).equals(others)
    assert set(table.filter(pl.col("product_id") == "p2")["tag"]) == {"green"}
    # A product of the scope with no candidate loses its tags; one outside it is refused.
    con.execute("CREATE TABLE only_p1 AS SELECT 'p1' AS product_id")
    result = write_product_tags(con, new.head(0), run_id="r3", at=T0 + timedelta(2),
                                scope="only_p1")
    assert (result.removed, result.rows) == (2, 3)
    with pytest.raises(TagStoreError, match="'product_id' is not in the scope 'only_p1'.*p2"):
        write_product_tags(con, new, run_id="r4", at=T0 + timedelta(3), scope="only_p1")


# --- atomicity --------------------------------------------------------------------------------

def test_failure_before_commit_leaves_tables_and_history_intact(con, write_path):
    def fail() -> None:
        raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError, match="crash before commit"):
        write_product_tags(con, BASE, run_id="r0", at=T0, before_commit=fail)
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE "
                         "'product_tag%'").fetchall()
    assert tables == []  # the first write created nothing
    write_product_tags(con, BASE, run_id="r1", at=T0)
    before, hist, oid = current(con), history(con), table_oid(con)
    changed = BASE.with_columns(score=pl.col("score") / 2)
    with pytest.raises(RuntimeError):
        write_product_tags(con, changed, run_id="r2", at=T0 + timedelta(1), before_commit=fail)
    assert current(con).equals(before) and history(con).equals(hist) and table_oid(con) == oid
    assert con.execute("SELECT count(*) FROM product_tag_writes").fetchone()[0] == 1
    assert write_product_tags(con, changed, run_id="r2", at=T0 + timedelta(1)).changed == 5


@pytest.mark.parametrize("change", ["large", "small"])
def test_process_killed_mid_write_leaves_previous_tables(tmp_path, change):
    path = tmp_path / "crash.duckdb"
    con = duckdb.connect(str(path))
    generate_candidates(con, "first", products=2_000, tags_per_product=3)
    write_product_tags(con, "first", run_id="r1", at=T0)
    if change == "large":  # 300,000 rows where there were 6,000: the table is rebuilt
        generate_candidates(con, "big", products=100_000, tags_per_product=3, shift=0.5)
    else:  # 20 products rescored, 10 lose their tags, 10 are new: changed in place
        con.execute("""
            CREATE TABLE big AS
            SELECT * REPLACE (CASE WHEN product_id < 'p00000020' THEN 1 - score / 2
                ELSE score END AS score)
            FROM first WHERE product_id NOT BETWEEN 'p00000100' AND 'p00000109'
            UNION ALL
            SELECT * REPLACE ('q' || product_id AS product_id)
            FROM first WHERE product_id < 'p00000010'
        """)
    before, hist = current(con), history(con)
    con.close()
    marker = tmp_path / "reached_before_commit"
    script = textwrap.dedent(f"""
        import os
        from datetime import datetime
        from pathlib import Path
        import duckdb
        from tag_pipeline.lib.tags.store import write_product_tags

        def die():
            Path({str(marker)!r}).touch()
            os._exit(17)

        con = duckdb.connect({str(path)!r})
        write_product_tags(con, "big", run_id="crash", at=datetime(2024, 4, 1),
                           before_commit=die)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 17, done.stderr
    assert marker.exists()  # it died with the whole write done but not committed
    con = duckdb.connect(str(path))
    try:
        assert current(con).equals(before) and history(con).equals(hist)
        assert con.execute("SELECT list(run_id) FROM product_tag_writes").fetchone()[0] == ["r1"]
        oid = table_oid(con)  # table oids are given anew when a database is opened
        again = write_product_tags(con, "first", run_id="r2", at=T0 + timedelta(1))
        assert (again.history_rows, again.unchanged) == (0, 6_000)
        big = write_product_tags(con, "big", run_id="r3", at=T0 + timedelta(2))
        if change == "large":
            assert big.rows == 300_000 == big.added + big.changed + big.unchanged
            assert big.history_rows == big.added + big.changed and big.removed == 0
            assert table_oid(con) != oid
        else:
            assert (big.rows, big.added, big.removed, big.changed) == (6_000, 30, 30, 60)
            assert table_oid(con) == oid  # the write that crashed was the in-place one
    finally:
        con.close()


# --- in place or rebuilt ----------------------------------------------------------------------

def test_small_change_is_applied_in_place_and_a_large_one_rebuilds(con):
    generate_candidates(con, "day1", products=1_000, tags_per_product=2)
    write_product_tags(con, "day1", run_id="r1", at=T0)
    oid = table_oid(con)
    # 1% of the products rescored: only their rows are replaced, the others keep their run.
    con.execute("CREATE TABLE day2 AS SELECT * REPLACE (CASE WHEN product_id < 'p00000010' "
                "THEN 1 - score / 2 ELSE score END AS score) FROM day1")
    small = write_product_tags(con, "day2", run_id="r2", at=T0 + timedelta(1))
    assert (small.changed, small.added, small.removed, small.rows) == (20, 0, 0, 2_000)
    assert table_oid(con) == oid
    runs = dict(con.execute("SELECT product_id < 'p00000010', list(DISTINCT run_id) "
                            "FROM product_tags GROUP BY ALL").fetchall())
    assert runs == {True: ["r2"], False: ["r1"]}
    # 80% of them rescored: more than REBUILD_FRACTION of the rows, so the table is rebuilt.
    con.execute("CREATE TABLE day3 AS SELECT * REPLACE (CASE WHEN product_id >= 'p00000200' "
                "THEN 1 - score / 2 ELSE score END AS score) FROM day2")
    large = write_product_tags(con, "day3", run_id="r3", at=T0 + timedelta(2))
    assert large.changed == 1_600 and table_oid(con) != oid
    assert tags_as_of(con).equals(current(con).select(VALUE_COLUMNS))


def test_in_place_and_rebuilt_writes_give_the_same_tables(tmp_path, monkeypatch):
    """The same writes, each applied in place or by a rebuild, leave identical tables."""
    results: dict[str, list[TagWriteResult]] = {}
    tables: dict[str, tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]] = {}
    for mode, fraction in (("in_place", 1e9), ("rebuild", 0.0)):
        monkeypatch.setattr(store, "REBUILD_FRACTION", fraction)
        con = duckdb.connect(str(tmp_path / f"{mode}.duckdb"))
        try:
            generate_candidates(con, "day1", products=500, tags_per_product=3)
            # Day 2: rescored, re-explained, re-faceted, dropped and new tags.
            con.execute("""
                CREATE TABLE day2 AS
                SELECT * REPLACE (
                    CASE WHEN product_id < 'p00000020' THEN 1 - score / 2 ELSE score END
                        AS score,
                    CASE WHEN product_id BETWEEN 'p00000020' AND 'p00000029'
                        THEN 'new words' ELSE explanation END AS explanation,
                    CASE WHEN product_id BETWEEN 'p00000030' AND 'p00000034'
                        THEN 'other facet' ELSE facet END AS facet)
                FROM day1
                WHERE NOT (product_id BETWEEN 'p00000040' AND 'p00000049' AND tag_type = 'type1')
                UNION ALL
                SELECT * REPLACE ('n' || product_id AS product_id)
                FROM day1 WHERE product_id < 'p00000005'
            """)
            # A scoped write: 3 products rescored, 1 left without tags, 1 new one.
            con.execute("CREATE TABLE scope3 AS SELECT * FROM (VALUES ('p00000100'), "
                        "('p00000101'), ('p00000102'), ('p00000103'), ('x1')) AS v(product_id)")
            con.execute("""
                CREATE TABLE scoped AS
                SELECT * REPLACE (score / 3 AS score, 'feedback' AS source)
                FROM day2 WHERE product_id BETWEEN 'p00000100' AND 'p00000102'
                UNION ALL
                SELECT * REPLACE ('x1' AS product_id) FROM day2 WHERE product_id = 'p00000200'
            """)
            writes = [("day1", None), ("day2", None), ("scoped", "scope3"), ("scoped", "scope3"),
                      ("day1", None)]
            results[mode] = [
                write_product_tags(con, table, run_id=f"r{run}", at=T0 + timedelta(run),
                                   scope=scope)
                for run, (table, scope) in enumerate(writes, start=1)]
            writes_log = con.sql("SELECT * FROM product_tag_writes ORDER BY write_seq").pl()
            tables[mode] = (current(con), history(con), writes_log)
        finally:
            con.close()
    counts = {mode: [(r.rows, r.products, r.added, r.removed, r.changed, r.unchanged,
                      r.history_rows) for r in done] for mode, done in results.items()}
    assert counts["in_place"] == counts["rebuild"]
    assert counts["in_place"][1][2:5] == (15, 10, 60)  # added, removed, changed on day 2
    assert counts["in_place"][3][-1] == 0  # the scoped write again changed nothing
    for in_place, rebuilt in zip(tables["in_place"], tables["rebuild"], strict=True):
        assert in_place.equals(rebuilt)
    # Back to day 1: a re-explained product keeps its first run, a rescored one takes the last.
    final = tables["in_place"][0]
    runs = dict(final.group_by("product_id").agg(pl.col("run_id").unique()).iter_rows())
    assert (runs["p00000025"], runs["p00000010"], runs["p00000300"]) == (["r1"], ["r5"], ["r1"])
    assert "n00000001" not in runs and "x1" not in runs  # a full write removes them


# --- history ----------------------------------------------------------------------------------

def test_tags_as_of_rebuilds_each_write_from_history(con, write_path):
    second = tags(
        ("p1", "red", "color", 0.5, "model", "red words"),
        ("p2", "blue", "color", 0.6, "model", "blue words"),
        ("p4", "green", "color", 0.3, "model", "green words"),
    )
    third = tags(("p1", "red", "color", 0.7, "feedback", "fixed"),
                 ("p5", "shirt", "category", 1.0, "catalog"))
    snapshots = []
    for run, candidates in enumerate([BASE, second, third], start=1):
        write_product_tags(con, candidates, run_id=f"r{run}", at=T0 + timedelta(hours=run))
        snapshots.append(current(con).select(VALUE_COLUMNS))
    for run, snapshot in enumerate(snapshots, start=1):
        assert tags_as_of(con, run_id=f"r{run}").equals(snapshot)
    assert tags_as_of(con, at=T0 + timedelta(hours=2, minutes=30)).equals(snapshots[1])
    assert tags_as_of(con, at=datetime(2024, 3, 1, 13, 0, tzinfo=UTC)).equals(snapshots[0])
    assert tags_as_of(con).equals(snapshots[2])
    assert tags_as_of(con, at=T0).is_empty()
    with pytest.raises(TagStoreError, match="'r9'"):
        tags_as_of(con, run_id="r9")


def test_restore_tags_writes_an_old_state_back_as_a_new_write(con, write_path):
    write_product_tags(con, BASE, run_id="r1", at=T0)
    write_product_tags(con, BASE.head(2).with_columns(score=pl.lit(0.2)), run_id="r2",
                       at=T0 + timedelta(1))
    result = restore_tags(con, to_run_id="r1", run_id="undo", at=T0 + timedelta(2))
    assert (result.added, result.changed, result.removed, result.rows) == (3, 2, 0, 5)
    restored = current(con)
    assert restored.select(VALUE_COLUMNS).equals(tags_as_of(con, run_id="r1"))
    assert set(restored["run_id"]) == {"undo"}
    assert set(events(con, "undo").values()) == {"added", "changed"}
    assert restore_tags(con, to_run_id="r1", run_id="undo2", at=T0 + timedelta(3)).history_rows \
        == 0
    with pytest.raises(TagStoreError, match="'nope'"):
        restore_tags(con, to_run_id="nope", run_id="x", at=T0)


# --- export -----------------------------------------------------------------------------------

def test_export_round_trips_and_replaces_the_previous_export(con, tmp_path, write_path):
    target = tmp_path / "exports" / "product_tags"
    write_product_tags(con, BASE, run_id="r1", at=T0)
    assert export_product_tags(con, target) == {"category": 1, "color": 2, "scene": 1,
                                                "style": 1}
    (target / "stale.parquet").write_bytes(b"left from an older export")
    write_product_tags(con, BASE.filter(pl.col("tag_type") != "scene"), run_id="r2",
                       at=T0 + timedelta(1))
    assert export_product_tags(con, target) == {"category": 1, "color": 2, "style": 1}
    assert sorted(p.name for p in target.iterdir()) == [
        "tag_type=category", "tag_type=color", "tag_type=style"]
    assert [p.name for p in target.parent.iterdir()] == ["product_tags"]  # no staging left
    table = ds.dataset(target, format="parquet", partitioning="hive").to_table()
    read = pl.from_arrow(table).with_columns(pl.col("tag_type").cast(pl.Utf8))
    read = read.select(current(con).columns).sort(KEY)
    assert read.equals(current(con))


# --- statements -------------------------------------------------------------------------------

def test_write_statements_are_not_models_and_need_every_ref_mapped():
    models = {m.name: m.folder for m in discover_models(SQL_ROOT)}
    assert "writes" not in models.values() and "product_tag_changes" not in models
    sql = load_statement(SQL_ROOT, "product_tags_in_scope", {},
                         {"product_tags": "product_tags", "scope": "retag list"})
    assert '"retag list"' in sql and not sql.endswith(";")
    with pytest.raises(SqlModelError, match="scope"):
        load_statement(SQL_ROOT, "product_tags_in_scope", {}, {"product_tags": "x"})
    with pytest.raises(SqlModelError, match="no_such_statement"):
        load_statement(SQL_ROOT, "no_such_statement", {}, {})
