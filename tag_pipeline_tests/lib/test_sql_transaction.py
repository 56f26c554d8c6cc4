"""``lib.sql.transaction``, the one transaction block every writer of the warehouse uses."""

from __future__ import annotations

import ast
from pathlib import Path

import duckdb
import pytest

from tag_pipeline.lib import sql
from tag_pipeline.lib.sql import NestedTransactionError, transaction

PACKAGE = Path(sql.__file__).resolve().parents[1]
STATEMENTS = {"BEGIN", "BEGIN TRANSACTION", "COMMIT", "ROLLBACK"}


@pytest.fixture()
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("CREATE TABLE t (x INTEGER)")
    yield connection
    connection.close()


def test_a_block_is_committed_whole(con):
    with transaction(con, "two rows"):
        con.execute("INSERT INTO t VALUES (1), (2)")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 2


def test_a_failing_block_leaves_nothing_and_the_error_is_raised_again(con):
    with pytest.raises(ZeroDivisionError), transaction(con, "half a write"):
        con.execute("INSERT INTO t VALUES (1)")
        raise ZeroDivisionError
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    with transaction(con):  # the connection is usable again
        con.execute("INSERT INTO t VALUES (3)")
    assert con.execute("SELECT x FROM t").fetchall() == [(3,)]


def test_a_nested_block_names_its_caller_and_the_outer_one_is_rolled_back(con):
    # DuckDB aborts the outer transaction on the nested BEGIN: nothing of it may stay.
    with pytest.raises(NestedTransactionError, match="inner runs its own transaction"), \
            transaction(con, "outer"):
        con.execute("INSERT INTO t VALUES (1)")
        with transaction(con, "inner"):
            pass  # pragma: no cover
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_no_module_writes_its_own_begin_commit_rollback():
    """Every transaction goes through lib.sql.transaction (rolled back on any error)."""
    hand_written = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(sql.__file__).resolve():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value.strip().rstrip(";") in STATEMENTS):
                hand_written.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not hand_written, "use tag_pipeline.lib.sql.transaction: " + ", ".join(hand_written)
