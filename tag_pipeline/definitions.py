"""The root: assembles defs/ and applies project-wide settings."""


import dagster as dg

from tag_pipeline.defs.cleaning.assets import cleaning_sql_assets, image_checks
from tag_pipeline.defs.cleaning.checks import cleaning_checks
from tag_pipeline.defs.ingest.assets import raw_products
from tag_pipeline.defs.ingest.checks import ingest_checks
from tag_pipeline.defs.labels.assets import catalog_profile_rules, labels_sql_assets
from tag_pipeline.defs.labels.checks import labels_checks
from tag_pipeline.defs.resources import build_resources

OWNER = "team:data-platform"

catalog_job = dg.define_asset_job(
    "catalog_job",
    selection=dg.AssetSelection.groups("ingest", "cleaning", "labels"),
    description="Load new landing files, clean them and build the catalog's labels.",
)


def _with_owner(spec: dg.AssetSpec) -> dg.AssetSpec:
    return spec if spec.owners else spec.replace_attributes(owners=[OWNER])


defs = dg.Definitions(
    assets=[raw_products, image_checks, catalog_profile_rules, *cleaning_sql_assets,
            *labels_sql_assets],
    asset_checks=[*ingest_checks, *cleaning_checks, *labels_checks],
    jobs=[catalog_job],
    resources=build_resources(),
    # DuckDB takes one writing process per file: steps run in one process, one at a time.
    executor=dg.in_process_executor,
).map_asset_specs(func=_with_owner)
