"""Sales and shopper feedback from the landing folders, and the behaviour tags from sales."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.policies import WAREHOUSE_POOL
from tag_pipeline.defs.resources import (
    SQL_ROOT,
    CatalogResource,
    PseudonymResource,
    sales_history_start,
)
from tag_pipeline.defs.retries import retry_only_transient
from tag_pipeline.defs.sql_models import file_code_version, sql_model_assets
from tag_pipeline.defs.table_metadata import column_schema
from tag_pipeline.lib.warehouse import count_rows, preview


def _event_asset(kind: str, group: str, description: str) -> dg.AssetsDefinition:
    table = f"raw_{kind}"

    @dg.asset(name=table, group_name=group, kinds={"duckdb", "python"},
              description=description, pool=WAREHOUSE_POOL)
    @retry_only_transient
    def _asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
               catalog: CatalogResource, pseudonyms: PseudonymResource) -> dg.MaterializeResult:
        from tag_pipeline.lib.events import ingest_events, unknown_products
        from tag_pipeline.lib.events.daily import days_loaded_by_run

        folder = Path(catalog.landing_dir) / kind
        folder.mkdir(parents=True, exist_ok=True)

        def progress(index: int, total: int, load) -> None:
            context.log.info(f"[{index}/{total}] {load.source_file}: {load.status}, "
                             f"{load.rows_loaded} rows loaded, {load.rows_rejected} rejected")

        with duckdb.get_connection() as con:
            report = ingest_events(con, kind, folder, key=pseudonyms.load(),
                                   loaded_at=datetime.now(UTC).replace(tzinfo=None),
                                   run_id=context.run_id, on_file=progress)
            rows = count_rows(con, table)
            rejects = con.table("event_rejects").filter(f"kind = '{kind}'").aggregate(
                "reason, count(*) AS n", "reason").pl()
            table_preview = preview(con, table)
            schema = column_schema(con, table)
            days = days_loaded_by_run(con, context.run_id) if kind == "sales" else []
            unknown = unknown_products(con, kind, context.run_id)
        if unknown.rows:
            context.log.warning(unknown.reason(kind))
        # The daily partitions of sales_daily these rows fall in (backfill them if past).
        day_metadata = {"order_days_loaded": len(days),
                        "first_order_day": str(days[0]) if days else "",
                        "last_order_day": str(days[-1]) if days else ""} if kind == "sales" \
            else {}
        return dg.MaterializeResult(metadata={
            **day_metadata,
            "dagster/row_count": rows,
            "dagster/column_schema": schema,
            "files_seen": len(report.files),
            "rows_loaded_this_run": report.rows_loaded,
            "rows_rejected_this_run": report.rows_rejected,
            **{f"rejected.{r}": int(n) for r, n in rejects.iter_rows()},
            "unknown_product_rows_this_run": unknown.rows,
            "unknown_products_this_run": unknown.products,
            "unknown_products_reason": unknown.reason(kind) if unknown.rows else "",
            "preview": dg.MetadataValue.md(table_preview),
        })

    return _asset


raw_sales = _event_asset(
    "sales", "sales",
    "Order lines from landing/sales (append-only, each file once); user ids pseudonymised "
    "with a keyed hash at ingest, rejected rows in event_rejects with their reason.")
raw_feedback = _event_asset(
    "feedback", "feedback",
    "Shoppers' and merchandisers' tag feedback (accept, reject, add, withdraw) from "
    "landing/feedback (append-only, each file once); user ids pseudonymised at ingest.")

behaviour_sql_assets = sql_model_assets(("behaviour",))

# One partition per UTC calendar day; the daily schedule fills yesterday, a backfill any range.
sales_daily_partitions = dg.DailyPartitionsDefinition(start_date=sales_history_start(),
                                                      timezone="UTC")


@dg.asset(group_name="sales_history", kinds={"duckdb", "sql"},
          partitions_def=sales_daily_partitions, deps=["raw_sales"],
          metadata={"sql_file": dg.MetadataValue.path("dbt_like_sql/writes/sales_daily.sql")},
          code_version=file_code_version(SQL_ROOT / "writes" / "sales_daily.sql"),
          pool=WAREHOUSE_POOL)
@retry_only_transient
def sales_daily(context: dg.AssetExecutionContext, duckdb: DuckDBResource
                ) -> dg.MaterializeResult:
    """Units, order lines, revenue and buyers per product for one UTC day of raw_sales, each
    order line counted once as the behaviour models count it; a day's rows are replaced in
    one transaction, so re-running a day (after late files) leaves its current totals."""
    from datetime import date

    from tag_pipeline.lib.events.daily import sales_day_preview, write_sales_day

    day = date.fromisoformat(context.partition_key)
    with duckdb.get_connection() as con:
        written = write_sales_day(con, SQL_ROOT, day, run_id=context.run_id)
        top = sales_day_preview(con, day)
        schema = column_schema(con, "sales_daily")
    context.log.info(f"sales_daily {day}: {written.products:,} products, {written.units:,} "
                     f"units, {written.order_lines:,} order lines (replaced "
                     f"{written.replaced_rows:,} rows)")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": written.products,
        "dagster/column_schema": schema,
        "units": written.units,
        "order_lines": written.order_lines,
        "revenue": round(written.revenue, 2),
        "buyers": written.buyers,
        "replaced_rows": written.replaced_rows,
        "top_products": dg.MetadataValue.md(top),
    })
