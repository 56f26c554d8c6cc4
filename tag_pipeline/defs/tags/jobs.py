"""Putting back an earlier state of the tags, e.g. after a bad model tagged the catalog."""

from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.policies import WAREHOUSE_POOL
from tag_pipeline.defs.table_metadata import column_schema


class RestoreTagsConfig(dg.Config):
    """The Dagster run whose product_tags state becomes current again."""

    to_run_id: str


@dg.op(pool=WAREHOUSE_POOL)
def restore_product_tags(context: dg.OpExecutionContext, config: RestoreTagsConfig,
                         duckdb: DuckDBResource) -> None:
    """Rebuild product_tags as it was right after ``to_run_id``, recorded in the history."""
    from tag_pipeline.lib.tags.store import restore_tags

    with duckdb.get_connection() as con:
        result = restore_tags(con, to_run_id=config.to_run_id, run_id=context.run_id,
                              at=datetime.now(UTC))
        schema = column_schema(con, "product_tags")
    context.log.info(f"restored the tags of run {config.to_run_id}: {result.added:,} added, "
                     f"{result.removed:,} removed, {result.changed:,} changed")
    metadata = {"restored_from_run": config.to_run_id, "dagster/row_count": result.rows,
                "dagster/column_schema": schema,
                "added": result.added, "removed": result.removed, "changed": result.changed}
    context.log_event(dg.AssetMaterialization("product_tags", metadata=metadata))
    context.log_event(dg.AssetMaterialization(
        "product_tag_history", metadata={"rows_appended": result.history_rows}))


@dg.job(description="Make the product_tags of an earlier run current again (recorded in "
                    "product_tag_history).")
def restore_tags_job() -> None:
    restore_product_tags()
