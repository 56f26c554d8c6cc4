"""Great Expectations suites run as Dagster asset checks, one per asset.

GX is imported inside the check body only: loading the definitions stays fast.
"""


from collections.abc import Callable

import dagster as dg
import duckdb as duckdb_lib
import polars as pl
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.policies import WAREHOUSE_POOL
from tag_pipeline.lib.check_frames import spec_columns
from tag_pipeline.lib.expectations.suites import ID_COLUMNS, SUITES
from tag_pipeline.lib.warehouse import read_table

FrameReader = Callable[[duckdb_lib.DuckDBPyConnection], pl.DataFrame]


def gx_asset_check(asset: str, *, blocking: bool, description: str,
                   frame: FrameReader | None = None, suite: str | None = None,
                   name: str | None = None,
                   additional_deps: list[str] | None = None) -> dg.AssetChecksDefinition:
    """An asset check that validates a table with a GX suite.

    By default the suite named like the asset validates the asset's own table; ``frame``
    reads another frame (joined or derived columns) and ``suite`` picks another suite;
    ``additional_deps`` are other assets the frame reads (the check runs after them).
    """
    suite_name = suite or asset

    @dg.asset_check(asset=asset, name=name or f"{asset}_expectations", blocking=blocking,
                    description=description, additional_deps=additional_deps,
                    pool=WAREHOUSE_POOL)
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        from tag_pipeline.lib.expectations.runner import validate_frame

        specs = SUITES[suite_name]()
        ids = ID_COLUMNS[suite_name]
        with duckdb.get_connection() as con:
            if frame is not None:
                data = frame(con)
            else:
                data = read_table(con, asset, spec_columns([s.kwargs for s in specs], ids))
        outcome = validate_frame(data, suite_name, specs, ids)
        return dg.AssetCheckResult(
            passed=outcome.success,
            # A failed blocking check stops what is downstream (ERROR); a non-blocking one
            # is shown and lets the run go on (WARN).
            severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
            metadata={**outcome.to_metadata(), "rows_validated": outcome.row_count,
                      "report": dg.MetadataValue.md(outcome.to_markdown())},
        )

    return _check
