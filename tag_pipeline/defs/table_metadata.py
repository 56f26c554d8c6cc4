"""Dagster metadata that describes a warehouse table: its columns, for the asset's page."""

from __future__ import annotations

import dagster as dg
import duckdb

from tag_pipeline.lib.warehouse import table_columns


def column_schema(con: duckdb.DuckDBPyConnection, table: str) -> dg.TableSchema:
    """The ``dagster/column_schema`` of a table as it is now (names, DuckDB types, NOT NULL),
    so the UI's Columns tab and the asset catalog's column search show the real table."""
    return dg.TableSchema(columns=[
        dg.TableColumn(name, dtype, constraints=dg.TableColumnConstraints(nullable=nullable))
        for name, dtype, nullable in table_columns(con, table)
    ])
