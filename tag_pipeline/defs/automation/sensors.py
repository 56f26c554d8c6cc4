"""Sensors: landing files start the jobs that load them; a champion move retags the catalog.

Enough new feedback retrains the tagger before the weekly schedule does.

Every sensor keeps a cursor in Dagster's storage and gives each run request a run key, so a
file (or an alias move, or a feedback threshold crossing) produces exactly one run, across
ticks and daemon restarts; all files found in one tick go into one run. Following Dagster's
convention they start STOPPED: turn them on in the UI (Automation) or with
``dagster sensor start``.
"""

import json
from pathlib import Path

import dagster as dg

from tag_pipeline.defs.resources import CatalogResource, MlflowResource, RetrainPolicyResource
from tag_pipeline.lib.landing import new_files

MINIMUM_INTERVAL_SECONDS = 30


@dg.sensor(job_name="catalog_job", minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="New or changed catalog landing files (the profile's globs) start "
                       "catalog_job, all files of a tick in one run.")
def catalog_files_sensor(context: dg.SensorEvaluationContext,
                         catalog: CatalogResource) -> dg.SensorResult | dg.SkipReason:
    """Request one catalog_job run for the catalog files that arrived since the cursor."""
    profile = catalog.load_profile()
    if not profile.root.is_dir():
        return dg.SkipReason(f"catalog folder {profile.root} does not exist yet")
    batch = new_files(profile.root, context.cursor, profile.matching_files())
    if batch is None:
        return dg.SkipReason(f"no new catalog file under {profile.root}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"catalog-{batch.run_key}",
                                    tags={"tag_pipeline/trigger": "catalog_files",
                                          "tag_pipeline/files": str(len(batch.files))})],
        cursor=batch.cursor,
    )


def landing_sensor(kind: str, job_name: str) -> dg.SensorDefinition:
    """A sensor on ``<landing_dir>/<kind>/`` that starts ``job_name`` for new files."""

    @dg.sensor(name=f"{kind}_files_sensor", job_name=job_name,
               minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description=f"New {kind} files in the landing folder start {job_name}, all "
                           "files of a tick in one run.")
    def _sensor(context: dg.SensorEvaluationContext,
                catalog: CatalogResource) -> dg.SensorResult | dg.SkipReason:
        folder = Path(catalog.landing_dir) / kind
        batch = new_files(folder, context.cursor)
        if batch is None:
            return dg.SkipReason(f"no new {kind} file under {folder}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"{kind}-{batch.run_key}",
                                        tags={"tag_pipeline/trigger": f"{kind}_files",
                                              "tag_pipeline/files": str(len(batch.files))})],
            cursor=batch.cursor,
        )

    return _sensor


@dg.sensor(job_name="retag_job", minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="When the tagger's champion alias moves (gate, promote, rollback or the "
                       "MLflow UI), retag the catalog with the new champion, once.")
def champion_alias_sensor(context: dg.SensorEvaluationContext,
                          mlflow: MlflowResource) -> dg.SensorResult | dg.SkipReason:
    """Compare the champion version with the cursor; request one retag per move."""
    from tag_pipeline.lib.registry import CHAMPION, alias_version

    version = alias_version(mlflow.client(), mlflow.registered_model_name, CHAMPION)
    if version is None:
        return dg.SkipReason(f"{mlflow.registered_model_name!r} has no champion yet")
    state = json.loads(context.cursor) if context.cursor else {"version": None, "moves": 0}
    if version == state["version"]:
        return dg.SkipReason(f"champion still v{version}")
    # The cursor is stored with the run request in the same tick, so each move is seen once;
    # the move counter keeps a later move back to an earlier version (a rollback) distinct.
    moves = int(state["moves"]) + 1
    return dg.SensorResult(
        run_requests=[dg.RunRequest(
            run_key=f"champion-move-{moves}-v{version}",
            tags={"tag_pipeline/trigger": "champion_alias", "tag_pipeline/champion": version,
                  "tag_pipeline/previous_champion": state["version"] or "none"})],
        cursor=json.dumps({"version": version, "moves": moves}),
    )


# A retrain in any of these states will count the feedback loaded so far.
_RETRAIN_PENDING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                    dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


# Materialization records read per page when summing the feedback loaded since a training.
_RECORDS_PAGE = 1000


def feedback_loaded_since(instance: dg.DagsterInstance, after_storage_id: int | None, *,
                          page_size: int = _RECORDS_PAGE) -> int:
    """Feedback rows loaded by the ``raw_feedback`` materializations recorded after
    ``after_storage_id`` (None: all of them), read from their ``rows_loaded_this_run``
    metadata in Dagster's event log, ``page_size`` records at a time: the warehouse is never
    opened."""
    records_filter = dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_feedback"),
                                           after_storage_id=after_storage_id)
    total, cursor = 0, None
    while True:
        page = instance.fetch_materializations(records_filter, limit=page_size,
                                               cursor=cursor)
        for record in page.records:
            loaded = record.asset_materialization.metadata.get("rows_loaded_this_run")
            total += int(loaded.value) if loaded is not None else 0
        if not page.has_more:
            return total
        cursor = page.cursor


@dg.sensor(job_name="retrain_job", minimum_interval_seconds=300,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="When the feedback loaded since the tagger's last training (the latest "
                       "tag_model materialization) reaches the retrain policy's threshold, "
                       "start retrain_job once; never while a retrain is queued or running. "
                       "Reads Dagster's event log only, never the warehouse.")
def feedback_retrain_sensor(context: dg.SensorEvaluationContext,
                            retrain_policy: RetrainPolicyResource
                            ) -> dg.SensorResult | dg.SkipReason:
    """Sum raw_feedback's rows_loaded_this_run since the last tag_model materialization; one
    run per threshold crossing."""
    from tag_pipeline.lib.events.retrain import RetrainState, decide_retrain

    # A retrain from the schedule, a person or an earlier tick is on its way: it will use this
    # feedback, and its tag_model materialization restarts the count.
    pending = context.instance.get_run_records(
        dg.RunsFilter(job_name="retrain_job", statuses=_RETRAIN_PENDING), limit=1)
    if pending:
        run = pending[0].dagster_run
        return dg.SkipReason(f"retrain_job run {run.run_id} is {run.status.value}")
    latest = context.instance.fetch_materializations(dg.AssetKey("tag_model"), limit=1).records
    baseline = latest[0].storage_id if latest else None
    count = feedback_loaded_since(context.instance, baseline)
    decision = decide_retrain(RetrainState.from_cursor(context.cursor), baseline, count,
                              retrain_policy.feedback_threshold)
    if decision.run_key is None:
        return dg.SkipReason(decision.reason)
    context.log.info(decision.reason)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=decision.run_key,
                                    tags={"tag_pipeline/trigger": "feedback_retrain",
                                          "tag_pipeline/feedback_events": str(count)})],
        cursor=decision.state.to_cursor(),
    )
