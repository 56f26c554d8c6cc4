"""Cleaning: the SQL models of dbt_like_sql/staging and cleaned, and the image checks."""


from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.policies import WAREHOUSE_POOL
from tag_pipeline.defs.resources import CatalogResource
from tag_pipeline.defs.retries import retry_only_transient
from tag_pipeline.defs.sql_models import sql_model_assets
from tag_pipeline.defs.table_metadata import column_schema
from tag_pipeline.lib.image_store import check_catalog_images
from tag_pipeline.lib.warehouse import counts_by, preview

cleaning_sql_assets = sql_model_assets(("staging", "cleaned"))


@dg.asset(
    group_name="cleaning",
    deps=["stg_products"],
    kinds={"duckdb", "python"},
    pool=WAREHOUSE_POOL,
)
@retry_only_transient
def image_checks(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, catalog: CatalogResource
) -> dg.MaterializeResult:
    """Each image reference resolved inside the image folder, decoded and size-checked."""
    profile = catalog.load_profile()
    with duckdb.get_connection() as con:
        stats = check_catalog_images(
            con, profile.root, profile.image_root, profile.cleaning.min_image_px,
            checked_at=datetime.now(UTC).replace(tzinfo=None),
        )
        statuses = counts_by(con, "image_checks", "status")
        table_preview = preview(con, "image_checks")
        schema = column_schema(con, "image_checks")
    rate = stats.decoded / stats.seconds if stats.seconds > 0 else 0.0
    context.log.info(
        f"image_checks: {stats.refs} references, {stats.hashed} hashed, {stats.decoded} "
        f"decoded in {stats.seconds:.1f} s"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats.refs,
            "dagster/column_schema": schema,
            "images_hashed": stats.hashed,
            "images_decoded": stats.decoded,
            "images_decoded_per_s": round(rate, 1),
            **{f"status.{k}": v for k, v in statuses.items()},
            "preview": dg.MetadataValue.md(table_preview),
        }
    )
