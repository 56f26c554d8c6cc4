"""The operations log: failed runs, kept where an engineer sees them.

It is a small DuckDB file of its own (``operations.duckdb`` in the project home), not the
warehouse: a failure is recorded by the run-failure sensor while another run may hold the
warehouse's single write lock.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

_DDL = """
CREATE TABLE IF NOT EXISTS pipeline_failures (
    run_id VARCHAR PRIMARY KEY,
    job_name VARCHAR NOT NULL,
    failed_at TIMESTAMP NOT NULL,
    steps VARCHAR,
    message VARCHAR,
    trigger VARCHAR
)
"""


def record_failure(database: Path, *, run_id: str, job_name: str, failed_at: datetime,
                   steps: list[str], message: str, trigger: str | None) -> None:
    """Insert (or update) one failed run in ``pipeline_failures``."""
    database.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database)) as con:
        con.execute(_DDL)
        con.execute(
            "INSERT OR REPLACE INTO pipeline_failures VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, job_name, failed_at.replace(tzinfo=None), ", ".join(steps),
             message[:4000], trigger],
        )


def read_failures(database: Path) -> pl.DataFrame:
    """Every recorded failure, newest first (empty when none was recorded)."""
    if not database.exists():
        return pl.DataFrame(schema={"run_id": pl.Utf8, "job_name": pl.Utf8,
                                    "failed_at": pl.Datetime, "steps": pl.Utf8,
                                    "message": pl.Utf8, "trigger": pl.Utf8})
    with duckdb.connect(str(database), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute("SELECT * FROM pipeline_failures ORDER BY failed_at DESC").pl()
