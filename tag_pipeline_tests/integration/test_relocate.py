"""A copied project home reads only itself: until `tag-pipeline relocate` it refuses to start,
naming the command; after it, no store names the original and a retag rescores nothing."""

from __future__ import annotations

import shutil
import sqlite3

import dagster as dg
import duckdb
import pytest

from tag_pipeline_tests.support import environment, home_env, run_cli


def stored_values_naming(home, text: str) -> list[str]:
    """'store table.column' of every value in the home's sqlite and DuckDB files holding
    ``text``."""
    found = []
    with sqlite3.connect(home / "mlflow" / "mlflow.db") as con:
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for column in [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]:
                n = con.execute(f'SELECT count(*) FROM "{table}" WHERE CAST("{column}" AS '
                                f"TEXT) LIKE ?", (f"%{text}%",)).fetchone()[0]
                if n:
                    found.append(f"mlflow.db {table}.{column}")
    for db in home.glob("*.duckdb"):
        with duckdb.connect(str(db), read_only=True) as con:
            for table, column in con.execute(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE data_type = 'VARCHAR'").fetchall():
                n = con.execute(f'SELECT count(*) FROM "{table}" WHERE contains("{column}", ?)',
                                [text]).fetchone()[0]
                if n:
                    found.append(f"{db.name} {table}.{column}")
    return found


@pytest.mark.slow
def test_a_copied_home_refuses_to_start_until_relocated_then_reads_only_itself(
        trained_home, tmp_path):
    original = trained_home.home
    copy = tmp_path / "elsewhere" / "home"
    shutil.copytree(original, copy)
    assert stored_values_naming(copy, str(original))  # what a copy used to read
    env = {**trained_home.env, **home_env(copy)}

    refused = run_cli(env, tmp_path, "suggest", "--title", "Women Red Dress")
    assert refused.returncode == 1
    assert f"was copied or moved from {original}" in refused.stderr
    assert "tag-pipeline relocate" in refused.stderr
    doctor = run_cli(env, tmp_path, "doctor")
    assert f"FAIL  project home: {copy} was copied or moved from {original}" in doctor.stdout

    moved = run_cli(env, tmp_path, "relocate")
    assert moved.returncode == 0, moved.stderr
    assert f"project home moved from {original} to {copy}" in moved.stdout
    assert stored_values_naming(copy, str(original)) == []
    again = run_cli(env, tmp_path, "relocate")
    assert "nothing to rewrite" in again.stdout

    # the copy works on its own: the champion loads from its artifacts, and a catalog run
    # then a retag rescore no product (image paths count by content, not by place)
    suggested = run_cli(env, tmp_path, "suggest", "--title", "Women Red Dress")
    assert suggested.returncode == 0, suggested.stderr
    from tag_pipeline.definitions import build_definitions
    from tag_pipeline.defs.resources import build_resources

    with environment(home_env(copy)):
        defs = build_definitions(build_resources())
        with dg.DagsterInstance.get() as instance:
            assert defs.resolve_job_def("catalog_job").execute_in_process(
                instance=instance).success
            job = defs.resolve_implicit_global_asset_job_def()
            result = job.execute_in_process(
                instance=instance, asset_selection=[dg.AssetKey("model_tags"),
                                                    dg.AssetKey("product_tags"),
                                                    dg.AssetKey("product_tag_history")])
    assert result.success
    scored = result.asset_materializations_for_node("product_tags")
    metadata = next(m.metadata for m in scored if m.asset_key == dg.AssetKey("model_tags"))
    assert metadata["products_scored"].value == 0
    assert stored_values_naming(copy, str(original)) == []


def test_relocate_rewrites_each_value_once_even_into_a_folder_below(tmp_path):
    # a home moved into a folder below its old place: /x/home -> /x/home/sub/home
    from tag_pipeline.lib.home import relocate, write_marker

    old = tmp_path / "home"
    new = old / "sub" / "home"
    new.mkdir(parents=True)
    write_marker(old)
    shutil.copy(old / "home.json", new / "home.json")
    (new / "mlflow").mkdir()
    with sqlite3.connect(new / "mlflow" / "mlflow.db") as con:
        con.execute("CREATE TABLE runs (artifact_uri TEXT)")
        con.execute("INSERT INTO runs VALUES (?)", (f"{old.as_uri()}/mlflow/artifacts/1",))
    with duckdb.connect(str(new / "warehouse.duckdb")) as con:
        con.execute("CREATE TABLE image_checks (image_path VARCHAR, detail VARCHAR)")
        con.execute("INSERT INTO image_checks VALUES (?, ?)",
                    [f"{old}/landing/a.png", f"no file at {old}/landing/b.png"])
    moved = relocate(new)
    assert moved.moved and sum(moved.values.values()) == 3
    with sqlite3.connect(new / "mlflow" / "mlflow.db") as con:
        assert con.execute("SELECT artifact_uri FROM runs").fetchone()[0] == \
            f"{new.as_uri()}/mlflow/artifacts/1"
    with duckdb.connect(str(new / "warehouse.duckdb")) as con:
        assert con.execute("SELECT * FROM image_checks").fetchone() == (
            f"{new}/landing/a.png", f"no file at {new}/landing/b.png")
    assert relocate(new).moved is False  # the marker now names the new place
