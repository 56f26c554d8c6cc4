"""The root: assembles defs/ and applies project-wide settings."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from tag_pipeline.defs.automation.failures import run_failure_sensor
from tag_pipeline.defs.automation.schedules import (
    retag_job_schedule,
    retrain_job_schedule,
    sales_daily_schedule,
)
from tag_pipeline.defs.automation.sensors import (
    catalog_files_sensor,
    champion_alias_sensor,
    feedback_retrain_sensor,
    landing_sensor,
)
from tag_pipeline.defs.cleaning.assets import cleaning_sql_assets, image_checks
from tag_pipeline.defs.cleaning.checks import cleaning_checks
from tag_pipeline.defs.events.assets import (
    behaviour_sql_assets,
    raw_feedback,
    raw_sales,
    sales_daily,
)
from tag_pipeline.defs.events.checks import events_checks
from tag_pipeline.defs.features.assets import product_features
from tag_pipeline.defs.features.checks import features_checks
from tag_pipeline.defs.ingest.assets import raw_products
from tag_pipeline.defs.ingest.checks import ingest_checks
from tag_pipeline.defs.labels.assets import catalog_profile_rules, labels_sql_assets
from tag_pipeline.defs.labels.checks import labels_checks
from tag_pipeline.defs.model.assets import tag_model, tag_model_evaluation
from tag_pipeline.defs.model.jobs import promote_model_job, rollback_model_job
from tag_pipeline.defs.policies import OWNERS
from tag_pipeline.defs.refiner.assets import tag_refiner
from tag_pipeline.defs.refiner.checks import refiner_checks
from tag_pipeline.defs.resources import RetrainPolicyResource, build_resources
from tag_pipeline.defs.tags.assets import (
    catalog_tag_disagreements,
    product_tags,
    product_tags_export,
    tags_sql_assets,
)
from tag_pipeline.defs.tags.checks import tags_checks
from tag_pipeline.defs.tags.jobs import restore_tags_job

# Transient failures (a busy MLflow server, a held warehouse lock, file I/O) are retried; every
# asset is wrapped by defs.retries.retry_only_transient, so a bad profile, SQL model or data
# error fails once, at once, with its own message.
RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)


def _asset_job(name: str, groups: tuple[str, ...], description: str):
    """A job over whole asset groups, with the project's retry policy."""
    return dg.define_asset_job(name, selection=dg.AssetSelection.groups(*groups),
                               description=description, op_retry_policy=RETRY_POLICY)


catalog_job = _asset_job(
    "catalog_job", ("ingest", "cleaning", "labels"),
    "Load new landing files, clean them and build the catalog's labels.",
)

model_job = _asset_job(
    "model_job", ("features", "model"),
    "Split and encode the catalog, train the tagger, evaluate it beside the "
    "baseline and promote it through the registry gate.",
)

tags_job = _asset_job(
    "tags_job", ("refiner", "tags"),
    "Train and ablate the GAN refiner on the champion tagger, then tag the whole "
    "catalog into product_tags (with history) and export it.",
)

retag_job = _asset_job(
    "retag_job", ("tags",),
    "Tag the catalog with the champion tagger (and its refiner if it passed its "
    "gate), without retraining anything.",
)

sales_job = _asset_job(
    "sales_job", ("sales", "tags"),
    "Load new sales files, recompute the behaviour tags (bestseller, trending, "
    "seasonal) and rewrite product_tags with them.",
)

feedback_job = _asset_job(
    "feedback_job", ("feedback", "tags"),
    "Load new feedback files and apply the feedback to product_tags at once "
    "(rejected tags leave, added tags are pinned, accepted tags gain confidence).",
)

# Partitioned apart: the unpartitioned sales_job and its sensor never carry a partition key.
sales_daily_job = _asset_job(
    "sales_daily_job", ("sales_history",),
    "Rewrite one UTC day of sales_daily (units, order lines, revenue, buyers per product) "
    "from raw_sales; backfill a range of days after late sales files.",
)

retrain_job = _asset_job(
    "retrain_job", ("features", "model", "refiner", "tags"),
    "Rebuild the features, retrain the tagger and the refiner through their gates, "
    "and retag the catalog.",
)


def build_definitions(resources: Mapping[str, Any]) -> dg.Definitions:
    """The project's definitions over the given resources (tests pass tmp_path ones)."""
    return dg.Definitions(
        # Project-wide asset attributes, applied once here rather than in every module.
        assets=dg.map_asset_specs(_project_attributes, [
                raw_products, image_checks, catalog_profile_rules, *cleaning_sql_assets,
                *labels_sql_assets, product_features, tag_model, tag_model_evaluation,
                tag_refiner, product_tags, product_tags_export, catalog_tag_disagreements,
                *tags_sql_assets,
                raw_sales, raw_feedback, *behaviour_sql_assets, sales_daily]),
        asset_checks=[*ingest_checks, *cleaning_checks, *labels_checks, *features_checks,
                      *refiner_checks, *tags_checks, *events_checks],
        jobs=[catalog_job, model_job, tags_job, retag_job, retrain_job, sales_job,
              feedback_job, sales_daily_job, promote_model_job,
              rollback_model_job, restore_tags_job],
        schedules=[retag_job_schedule, retrain_job_schedule,
                   sales_daily_schedule(sales_daily_job)],
        sensors=[catalog_files_sensor, landing_sensor("sales", "sales_job"),
                 landing_sensor("feedback", "feedback_job"), champion_alias_sensor,
                 feedback_retrain_sensor, run_failure_sensor],
        # The retrain policy's default unless the caller brings its own.
        resources={"retrain_policy": RetrainPolicyResource(), **resources},
        # DuckDB takes one writing process per file: steps run in one process, one at a time.
        executor=dg.in_process_executor,
    )


def _project_attributes(spec: dg.AssetSpec) -> dg.AssetSpec:
    """Who answers for every table (merged with any owner an asset names itself)."""
    return spec.merge_attributes(owners=[o for o in OWNERS if o not in spec.owners])


defs = build_definitions(build_resources())
