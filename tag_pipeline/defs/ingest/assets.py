"""Landing files into the warehouse: raw_products, its parse rejects and the file ledger."""


from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.policies import WAREHOUSE_POOL
from tag_pipeline.defs.resources import CatalogResource
from tag_pipeline.defs.retries import retry_only_transient
from tag_pipeline.defs.table_metadata import column_schema
from tag_pipeline.lib.catalog.ingest import FileLoad, ingest_catalog
from tag_pipeline.lib.warehouse import count_rows, counts_by, preview

RAW_TABLES = ("raw_products", "raw_product_rejects", "ingest_files")


@dg.multi_asset(
    specs=[
        dg.AssetSpec("raw_products", group_name="ingest", kinds={"duckdb", "python"},
                     description="Every row of every loaded landing file, with file, line "
                                 "and load time (append-only)."),
        dg.AssetSpec("raw_product_rejects", group_name="ingest", kinds={"duckdb"},
                     description="Lines the file reader could not parse, with the error."),
        dg.AssetSpec("ingest_files", group_name="ingest", kinds={"duckdb"},
                     description="The ledger of loaded files: content hash, rows, status."),
    ],
    pool=WAREHOUSE_POOL,
)
@retry_only_transient
def raw_products(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, catalog: CatalogResource
) -> Iterator[dg.MaterializeResult]:
    """Load every new or changed landing file of the catalog profile once."""
    profile = catalog.load_profile()
    if profile.generator == "demo" and (
        not profile.root.exists() or not profile.matching_files()
    ):
        from tag_pipeline.lib.catalog.demo import generate_demo_catalog

        manifest = generate_demo_catalog(profile.root)
        context.log.info(f"generated the demo catalog: {manifest.n_rows} rows in {profile.root}")

    def progress(index: int, total: int, load: FileLoad) -> None:
        context.log.info(
            f"[{index}/{total}] {load.source_file}: {load.status}, {load.rows_loaded} rows "
            f"loaded, {load.rows_rejected} rejected {load.detail}".rstrip()
        )

    with duckdb.get_connection() as con:
        report = ingest_catalog(con, profile, datetime.now(UTC).replace(tzinfo=None),
                                run_id=context.run_id, on_file=progress)
        totals = {t: count_rows(con, t) for t in RAW_TABLES}
        reasons = counts_by(con, "raw_product_rejects", "error_type")
        previews = {t: preview(con, t) for t in RAW_TABLES}
        schemas = {t: column_schema(con, t) for t in RAW_TABLES}
    files_md = "\n".join(
        f"| {f.source_file} | {f.status} | {f.rows_loaded} | {f.rows_rejected} |"
        for f in report.files
    )
    run_metadata = {
        "profile": profile.name,
        "files_seen": len(report.files),
        "files_loaded": report.count("new") + report.count("changed"),
        "files_unchanged": report.count("unchanged") + report.count("duplicate_content"),
        "rows_loaded_this_run": report.rows_loaded,
        "rows_rejected_this_run": report.rows_rejected,
    }
    yield dg.MaterializeResult(
        asset_key="raw_products",
        metadata={
            **run_metadata,
            "dagster/row_count": totals["raw_products"],
            "dagster/column_schema": schemas["raw_products"],
            "preview": dg.MetadataValue.md(previews["raw_products"]),
            "files": dg.MetadataValue.md(
                "| file | status | rows | rejected |\n| --- | --- | --- | --- |\n" + files_md
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key="raw_product_rejects",
        metadata={
            "dagster/row_count": totals["raw_product_rejects"],
            "dagster/column_schema": schemas["raw_product_rejects"],
            **{f"rejected.{k}": v for k, v in reasons.items()},
            "preview": dg.MetadataValue.md(previews["raw_product_rejects"]),
        },
    )
    yield dg.MaterializeResult(
        asset_key="ingest_files",
        metadata={
            "dagster/row_count": totals["ingest_files"],
            "dagster/column_schema": schemas["ingest_files"],
            "preview": dg.MetadataValue.md(previews["ingest_files"]),
        },
    )
