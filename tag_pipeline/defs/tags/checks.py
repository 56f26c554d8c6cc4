"""Checks on the tag tables: GX suites, catalog coverage, consistency and registry versions."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.expectations import gx_asset_check
from tag_pipeline.defs.policies import WAREHOUSE_POOL
from tag_pipeline.defs.resources import MlflowResource
from tag_pipeline.lib.check_frames import (
    disagreements_frame,
    model_versions,
    product_tags_frame,
    tag_consistency_frame,
    tag_coverage_frame,
)


@dg.asset_check(asset="product_tags", blocking=True,
                description="Every tagger and refiner version named in product_tags exists in "
                            "the MLflow model registry.",
                pool=WAREHOUSE_POOL)
def product_tags_versions_registered(duckdb: DuckDBResource,
                                     mlflow: MlflowResource) -> dg.AssetCheckResult:
    """Look each distinct (model, version) of product_tags up in the registry."""
    from mlflow.exceptions import MlflowException

    with duckdb.get_connection() as con:
        versions = model_versions(con)
    client = mlflow.client()
    names = {"tagger": mlflow.registered_model_name, "refiner": mlflow.refiner_model_name}
    missing = []
    for kind, version in versions:
        try:
            client.get_model_version(names[kind], version)
        except MlflowException:
            missing.append(f"{names[kind]} v{version}")
    return dg.AssetCheckResult(
        passed=not missing,
        metadata={"versions_checked": len(versions),
                  "missing": ", ".join(missing) or "none"},
        description=(f"not in the registry: {', '.join(missing)}" if missing else None),
    )


tags_checks = [
    gx_asset_check("product_tags", blocking=True, frame=product_tags_frame,
                   description="Tags complete, scores in [0, 1], known types and sources, each "
                               "tag once per product, model tags carry their tagger version."),
    gx_asset_check("model_tags", blocking=True,
                   description="Model tags complete, scores in [0, 1], each tag once per "
                               "facet of a product, with the tagger version."),
    gx_asset_check("product_tag_history", blocking=True,
                   description="Every change names its product, tag, kind, run and time."),
    gx_asset_check("product_tags", blocking=True, frame=tag_consistency_frame,
                   suite="tag_consistency", name="product_tags_consistent",
                   description="No product has two model tags in a single-valued facet (two "
                               "genders, two article types) after refinement."),
    gx_asset_check("product_tags", blocking=False, frame=tag_coverage_frame,
                   suite="tag_coverage", name="product_tags_cover_catalog",
                   additional_deps=["untagged_products"],
                   description="Every cleaned product has a tag, or a reason in "
                               "untagged_products."),
    product_tags_versions_registered,
    gx_asset_check("catalog_tag_disagreements", blocking=False, frame=disagreements_frame,
                   description="One row per product and single-valued facet, complete, with "
                               "two different values and a model score in [0, 1]."),
]
