"""Sales and shopper feedback from the landing folders, and the behaviour tags from sales."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.policies import OWNERS
from tag_pipeline.defs.resources import CatalogResource, PseudonymResource
from tag_pipeline.defs.sql_models import sql_model_assets
from tag_pipeline.lib.warehouse import count_rows, preview


def _event_asset(kind: str, group: str, description: str) -> dg.AssetsDefinition:
    table = f"raw_{kind}"

    @dg.asset(name=table, group_name=group, owners=OWNERS, kinds={"duckdb", "python"},
              description=description)
    def _asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
               catalog: CatalogResource, pseudonyms: PseudonymResource) -> dg.MaterializeResult:
        from tag_pipeline.lib.events import ingest_events

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
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows,
            "files_seen": len(report.files),
            "rows_loaded_this_run": report.rows_loaded,
            "rows_rejected_this_run": report.rows_rejected,
            **{f"rejected.{r}": int(n) for r, n in rejects.iter_rows()},
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
