"""GX checks on sales, feedback, the behaviour tags and the daily sales history."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.expectations import gx_asset_check
from tag_pipeline.defs.policies import WAREHOUSE_POOL


@dg.asset_check(asset="sales_daily", name="sales_daily_expectations", blocking=True,
                description="The day's rows: each product once, units and order lines >= 1, "
                            "revenue >= 0, no more buyers than order lines.",
                pool=WAREHOUSE_POOL)
def sales_daily_expectations(context: dg.AssetCheckExecutionContext,
                             duckdb: DuckDBResource) -> dg.AssetCheckResult:
    """GX over the day this run materialized (its ``dagster/partition`` tag), not the whole
    history; run on its own, the latest day written. (Checks with their own partitions are a
    preview feature of Dagster 1.13, so the check finds its day through the run.)"""
    from tag_pipeline.lib.events.daily import written_day_rows
    from tag_pipeline.lib.expectations.runner import validate_frame
    from tag_pipeline.lib.expectations.suites import ID_COLUMNS, SUITES

    with duckdb.get_connection() as con:
        days, frame = written_day_rows(con, context.run.tags.get("dagster/partition"))
    outcome = validate_frame(frame, "sales_daily", SUITES["sales_daily"](),
                             ID_COLUMNS["sales_daily"])
    return dg.AssetCheckResult(
        passed=outcome.success, severity=dg.AssetCheckSeverity.ERROR,
        metadata={**outcome.to_metadata(), "rows_validated": outcome.row_count,
                  "days_validated": ", ".join(str(d) for d in days),
                  "report": dg.MetadataValue.md(outcome.to_markdown())})


events_checks = [
    gx_asset_check("raw_sales", blocking=True,
                   description="Order lines complete, quantities >= 1, prices >= 0, user ids "
                               "pseudonymised."),
    gx_asset_check("raw_feedback", blocking=True,
                   description="Feedback complete, actions known, user ids pseudonymised."),
    *(gx_asset_check(name, blocking=True, description=description) for name, description in (
        ("sales_by_product_period", "Units, lines and revenue per product and month >= 0."),
        ("sales_by_product_window", "Each product once with its window units."),
        ("sales_season_peaks", "Peaks in a valid month with positive units."),
        ("behaviour_tags", "Known type, scores in [0, 1], evidence, each tag once."),
    )),
    sales_daily_expectations,
]
