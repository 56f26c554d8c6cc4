"""Daily sales history: one day of ``raw_sales`` per product, rewritten one day at a time.

``sales_daily`` holds a row per (sales_date, product_id) with units, order lines, revenue and
distinct buyers (pseudonymised user keys), counted as the behaviour models count them (see
``dbt_like_sql/writes/sales_daily.sql``). Each day is replaced in one transaction, so writing a
day twice, or again after late files arrived, leaves exactly that day's current totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb
import polars as pl

from tag_pipeline.lib.events.ingest import ensure_event_tables
from tag_pipeline.lib.sql import load_statement, transaction
from tag_pipeline.lib.warehouse import markdown_table

SALES_DAILY_TABLE = "sales_daily"

_DDL = f"""
    CREATE TABLE IF NOT EXISTS {SALES_DAILY_TABLE} (
        sales_date DATE NOT NULL,
        product_id VARCHAR NOT NULL,
        units BIGINT NOT NULL,
        order_lines BIGINT NOT NULL,
        revenue DOUBLE NOT NULL,
        buyers BIGINT NOT NULL,
        written_at TIMESTAMP NOT NULL,
        run_id VARCHAR,
        PRIMARY KEY (sales_date, product_id)
    )
"""


@dataclass(frozen=True)
class SalesDay:
    """What one day's rewrite stored (and what it replaced)."""

    day: date
    products: int
    units: int
    order_lines: int
    revenue: float
    buyers: int
    replaced_rows: int


def write_sales_day(con: duckdb.DuckDBPyConnection, sql_root: Path, day: date, *,
                    run_id: str | None = None, written_at: datetime | None = None) -> SalesDay:
    """Replace ``sales_daily``'s rows of ``day`` with its current totals from ``raw_sales``.

    Args:
        con: The warehouse connection; it must not be inside a transaction.
        sql_root: The ``dbt_like_sql`` folder (``writes/sales_daily.sql``).
        day: The calendar day (UTC) to rewrite.
        run_id: The orchestrator's run id, stored on the rows.
        written_at: The write time stored on the rows (now, UTC, by default).
    """
    ensure_event_tables(con)
    con.execute(_DDL)
    start = datetime.combine(day, time())
    statement = load_statement(
        sql_root, "sales_daily",
        {"day_start": start.isoformat(sep=" "),
         "day_end": (start + timedelta(days=1)).isoformat(sep=" ")},
        {"raw_sales": "raw_sales"},
    )
    stamp = written_at or datetime.now(UTC).replace(tzinfo=None)
    with transaction(con, f"{SALES_DAILY_TABLE} for {day}"):
        replaced = con.execute(f"DELETE FROM {SALES_DAILY_TABLE} WHERE sales_date = ?",
                               [day]).fetchone()[0]
        con.execute(f"INSERT INTO {SALES_DAILY_TABLE} SELECT *, ?, ? FROM ({statement})",
                    [stamp, run_id])
        products, units, lines, revenue, buyers = con.execute(
            f"""SELECT count(*), coalesce(sum(units), 0), coalesce(sum(order_lines), 0),
                       coalesce(sum(revenue), 0), coalesce(sum(buyers), 0)
                FROM {SALES_DAILY_TABLE} WHERE sales_date = ?""", [day]).fetchone()
    return SalesDay(day=day, products=int(products), units=int(units), order_lines=int(lines),
                    revenue=float(revenue), buyers=int(buyers), replaced_rows=int(replaced))


def days_loaded_by_run(con: duckdb.DuckDBPyConnection, run_id: str) -> list[date]:
    """The order days of the sales rows a run loaded: the daily partitions it changed."""
    ensure_event_tables(con)
    rows = con.execute(
        """
        SELECT DISTINCT s.ordered_at::DATE AS d
        FROM raw_sales AS s JOIN event_files AS f USING (load_id)
        WHERE f.kind = 'sales' AND f.run_id = ?
        ORDER BY d
        """, [run_id]).fetchall()
    return [r[0] for r in rows]


def sales_day_preview(con: duckdb.DuckDBPyConnection, day: date, limit: int = 8) -> str:
    """The day's best-selling products as a Markdown table."""
    frame = con.execute(
        f"SELECT product_id, units, order_lines, round(revenue, 2) AS revenue, buyers "
        f"FROM {SALES_DAILY_TABLE} WHERE sales_date = ? ORDER BY units DESC, product_id "
        f"LIMIT {int(limit)}", [day]).pl()
    return markdown_table(frame)


def written_day_rows(con: duckdb.DuckDBPyConnection, day: str | None
                     ) -> tuple[list[date], pl.DataFrame]:
    """The rows of ``day`` (YYYY-MM-DD), or of the latest day written when ``day`` is None."""
    con.execute(_DDL)
    if day is not None:
        days = [date.fromisoformat(day)]
    else:
        days = [r[0] for r in con.execute(
            f"SELECT sales_date FROM {SALES_DAILY_TABLE} ORDER BY written_at DESC, "
            "sales_date DESC LIMIT 1").fetchall()]
    frame = con.execute(
        f"SELECT * FROM {SALES_DAILY_TABLE} WHERE list_contains(?::DATE[], sales_date) "
        "ORDER BY sales_date, product_id", [days]).pl()
    return days, frame
