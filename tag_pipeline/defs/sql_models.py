"""One Dagster asset per SQL model in ``dbt_like_sql/``; dependencies come from its refs."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.policies import WAREHOUSE_POOL
from tag_pipeline.defs.resources import SQL_ROOT, CatalogResource
from tag_pipeline.defs.retries import retry_only_transient
from tag_pipeline.defs.table_metadata import column_schema
from tag_pipeline.lib.catalog.profile import model_vars
from tag_pipeline.lib.events import behaviour_vars
from tag_pipeline.lib.hashing import files_sha256
from tag_pipeline.lib.sql import MACRO_FOLDER, SqlModel, discover_models, run_model
from tag_pipeline.lib.warehouse import counts_by, preview, sum_column

# Which SQL folder feeds which asset group (groups match the defs/ folders).
FOLDER_GROUPS = {"staging": "cleaning", "cleaned": "cleaning", "labels": "labels",
                 "tags": "tags", "behaviour": "sales"}

# Columns whose value counts are shown as metadata, per model.
BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "stg_products": ("row_status", "reject_reason"),
    "cleaned_products": ("text_lang", "image_status"),
    "rejected_products": ("reject_reason", "stage"),
    "product_labels": ("tag_type", "source"),
    "tag_taxonomy": ("tag_type",),
    "untagged_products": ("reason",),
    "behaviour_tags": ("tag",),
}


# Columns whose totals are shown as metadata, per model.
SUMS: dict[str, tuple[str, ...]] = {
    "row_accounting": ("raw_rows", "parse_rejected", "cleaned", "rejected", "superseded",
                       "accounted", "updated_at_unparsed"),
}


def file_code_version(path: Path, root: Path = SQL_ROOT) -> str:
    """A SQL file and the macros every model may call, hashed: the Dagster UI marks the asset
    changed (and what is downstream stale) when either is edited."""
    return files_sha256([path, *sorted((root / MACRO_FOLDER).glob("*.sql"))])[:16]


def _build(model: SqlModel) -> dg.AssetsDefinition:
    group = FOLDER_GROUPS.get(model.folder.split("/")[0], "cleaning")

    @dg.asset(
        name=model.name,
        group_name=group,
        deps=[dg.AssetKey(ref) for ref in model.refs],
        kinds={"duckdb", "sql"},
        description=model.description or f"SQL model {model.path.name}",
        metadata={"sql_file": dg.MetadataValue.path(str(model.path.relative_to(SQL_ROOT.parent)))},
        code_version=file_code_version(model.path),
        pool=WAREHOUSE_POOL,
    )
    @retry_only_transient
    def _sql_asset(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, catalog: CatalogResource
    ) -> dg.MaterializeResult:
        profile = catalog.load_profile()
        # The behaviour models' window ends now (their thresholds are behaviour_vars' defaults).
        variables = {**model_vars(profile), **behaviour_vars(datetime.now(UTC))}
        with duckdb.get_connection() as con:
            rows = run_model(con, model, SQL_ROOT, variables)
            metadata: dict[str, object] = {"dagster/row_count": rows,
                                           "dagster/column_schema": column_schema(con, model.name),
                                           "preview": dg.MetadataValue.md(preview(con, model.name))}
            for column in BREAKDOWNS.get(model.name, ()):
                for value, n in counts_by(con, model.name, column).items():
                    metadata[f"{column}.{value}"] = n
            for column in SUMS.get(model.name, ()):
                metadata[f"total.{column}"] = sum_column(con, model.name, column)
            if model.name == "row_accounting":
                for source_file, n in con.execute(
                        "SELECT source_file, updated_at_unparsed FROM row_accounting "
                        "WHERE updated_at_unparsed > 0 ORDER BY 1").fetchall():
                    context.log.warning(
                        f"{n} row(s) of {source_file} have an update time in no accepted form "
                        "(kept, with no update time); `tag-pipeline profile check` shows "
                        "examples and the accepted forms")
        context.log.info(f"{model.name}: {rows} rows")
        return dg.MaterializeResult(metadata=metadata)

    return _sql_asset


def sql_model_assets(folders: tuple[str, ...]) -> list[dg.AssetsDefinition]:
    """Assets for the models in the given top-level SQL folders."""
    return [_build(m) for m in discover_models(SQL_ROOT) if m.folder.split("/")[0] in folders]
