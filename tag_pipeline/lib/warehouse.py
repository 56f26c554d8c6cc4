"""Small read-only helpers over DuckDB tables: counts, breakdowns and Markdown previews."""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from tag_pipeline.lib.sql import quote_ident, transaction


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """True when ``table`` is a table (not a view, not a temporary table) of the main schema
    of the connection's current database."""
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary "
        "AND table_name = ? AND database_name = current_database()", [table]).fetchone()
    return bool(row and row[0])


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, bool]]:
    """``(name, DuckDB type, nullable)`` of each column of ``table``, in table order."""
    described = con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()
    return [(str(name), str(dtype), str(null).upper() == "YES")
            for name, dtype, null, *_ in described]


def read_table(con: duckdb.DuckDBPyConnection, table: str,
               columns: list[str] | None = None) -> pl.DataFrame:
    """A table (or some of its columns) as a polars frame."""
    cols = ", ".join(quote_ident(c) for c in columns) if columns else "*"
    return con.sql(f"SELECT {cols} FROM {quote_ident(table)}").pl()


def count_rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Row count of a table."""
    return int(con.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchone()[0])


def sum_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> int:
    """Sum of an integer column (0 for an empty table)."""
    row = con.execute(
        f"SELECT coalesce(sum({quote_ident(column)}), 0) FROM {quote_ident(table)}"
    ).fetchone()
    return int(row[0])


def counts_by(con: duckdb.DuckDBPyConnection, table: str, column: str) -> dict[str, int]:
    """Row counts per value of ``column`` (NULL shown as 'null')."""
    rows = con.execute(
        f"SELECT coalesce(CAST({quote_ident(column)} AS VARCHAR), 'null') AS v, count(*) "
        f"FROM {quote_ident(table)} GROUP BY ALL ORDER BY 2 DESC, 1"
    ).fetchall()
    return {str(v): int(n) for v, n in rows}


def markdown_table(frame: pl.DataFrame, max_chars: int = 60) -> str:
    """A Markdown table of a small frame, cells cut to ``max_chars``."""
    if frame.is_empty():
        return "_no rows_"

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= max_chars else text[: max_chars - 1] + "…"

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *body])


def preview(con: duckdb.DuckDBPyConnection, table: str, limit: int = 5,
            exclude: tuple[str, ...] = ("tag_fields",)) -> str:
    """The first rows of a table as Markdown (nested columns left out)."""
    described = con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()
    cols = [name for name, dtype, *_ in described
            if name not in exclude and "MAP" not in dtype and "[]" not in dtype]
    frame = con.sql(
        f"SELECT {', '.join(quote_ident(c) for c in cols)} FROM {quote_ident(table)} "
        f"LIMIT {int(limit)}"
    ).pl()
    return markdown_table(frame)


def replace_table(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Replace ``table`` with the rows of ``frame`` in one transaction."""
    view = f"_frame_{table}"
    con.register(view, frame)
    try:
        with transaction(con, "replace_table"):
            con.execute(
                f"CREATE OR REPLACE TABLE {quote_ident(table)} AS SELECT * FROM {quote_ident(view)}"
            )
    finally:
        con.unregister(view)
