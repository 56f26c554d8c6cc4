"""Sensors, schedules and the failure sensor, evaluated with real contexts: cursors and run
keys over repeated ticks and a restart, a real sqlite MLflow registry, a real failed run."""

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import dagster as dg
import pytest

from tag_pipeline.defs.automation.failures import run_failure_sensor
from tag_pipeline.defs.automation.schedules import retag_job_schedule, retrain_job_schedule
from tag_pipeline.defs.automation.sensors import (
    catalog_files_sensor,
    champion_alias_sensor,
    feedback_retrain_sensor,
    landing_sensor,
)
from tag_pipeline.defs.events.assets import raw_feedback
from tag_pipeline.defs.resources import (
    CatalogResource,
    MlflowResource,
    OperationsResource,
    PseudonymResource,
    RetrainPolicyResource,
    WarehouseResource,
)
from tag_pipeline.lib.landing import new_files
from tag_pipeline.lib.operations import read_failures
from tag_pipeline_tests.support import SHARED_DATA


def _catalog(tmp_path) -> CatalogResource:
    return CatalogResource(profile="demo", landing_dir=str(tmp_path / "landing"),
                           shared_data_dir=str(SHARED_DATA))


def _tick(sensor, cursor, **resources):
    context = dg.build_sensor_context(cursor=cursor, resources=resources)
    return sensor(context)


def _write(path, text="sku,title\n1,a\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_catalog_sensor_requests_one_run_per_batch_of_files(tmp_path):
    catalog = _catalog(tmp_path)
    demo = tmp_path / "landing" / "demo"
    assert isinstance(_tick(catalog_files_sensor, None, catalog=catalog), dg.SkipReason)
    _write(demo / "products_1.csv")
    _write(demo / "notes.txt", "not a catalog file")
    first = _tick(catalog_files_sensor, None, catalog=catalog)
    assert len(first.run_requests) == 1
    assert first.run_requests[0].tags["tag_pipeline/files"] == "1"
    assert list(json.loads(first.cursor)) == ["products_1.csv"]

    # Same files: nothing; a "restart" is a new context from the stored cursor.
    assert isinstance(_tick(catalog_files_sensor, first.cursor, catalog=catalog), dg.SkipReason)

    # Two files at once: one run for both, with a new run key.
    _write(demo / "products_2.csv")
    _write(demo / "products_3.jsonl", '{"sku": "9", "title": "x"}\n')
    second = _tick(catalog_files_sensor, first.cursor, catalog=catalog)
    assert len(second.run_requests) == 1
    assert second.run_requests[0].tags["tag_pipeline/files"] == "2"
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert isinstance(_tick(catalog_files_sensor, second.cursor, catalog=catalog), dg.SkipReason)

    # A file rewritten in place is a new version: one more run.
    _write(demo / "products_1.csv", "sku,title\n1,a\n2,b\n")
    os.utime(demo / "products_1.csv", ns=(1, 10**18))
    third = _tick(catalog_files_sensor, second.cursor, catalog=catalog)
    assert third.run_requests[0].tags["tag_pipeline/files"] == "1"


def test_landing_sensor_watches_its_folder_and_keeps_run_keys_stable(tmp_path):
    catalog = _catalog(tmp_path)
    sensor = landing_sensor("sales", "catalog_job")
    assert sensor.name == "sales_files_sensor"
    _write(tmp_path / "landing" / "sales" / "2026-11-28.csv", "order_id\n1\n")
    first = _tick(sensor, None, catalog=catalog)
    again = _tick(sensor, None, catalog=catalog)
    # The same file versions give the same run key, so a tick repeated after a crash (before
    # its cursor was stored) is deduplicated by Dagster instead of loading twice.
    assert first.run_requests[0].run_key == again.run_requests[0].run_key
    assert isinstance(_tick(sensor, first.cursor, catalog=catalog), dg.SkipReason)


def test_landing_cursor_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="not JSON"):
        new_files(tmp_path, "{broken")


def test_champion_sensor_fires_once_per_alias_move(tmp_path):
    from tag_pipeline.lib.registry import CHAMPION, ensure_registered_model, move_alias

    mlflow = MlflowResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                            registered_model_name="tagger")
    client = mlflow.client()
    assert isinstance(_tick(champion_alias_sensor, None, mlflow=mlflow), dg.SkipReason)
    ensure_registered_model(client, "tagger")
    for _ in range(2):
        client.create_model_version("tagger", source=(tmp_path / "model").as_uri())
    move_alias(client, "tagger", CHAMPION, "1", actor="test", reason="first")

    first = _tick(champion_alias_sensor, None, mlflow=mlflow)
    assert [r.tags["tag_pipeline/champion"] for r in first.run_requests] == ["1"]
    assert isinstance(_tick(champion_alias_sensor, first.cursor, mlflow=mlflow), dg.SkipReason)

    move_alias(client, "tagger", CHAMPION, "2", actor="test", reason="promote")
    second = _tick(champion_alias_sensor, first.cursor, mlflow=mlflow)
    assert [r.tags["tag_pipeline/champion"] for r in second.run_requests] == ["2"]
    assert isinstance(_tick(champion_alias_sensor, second.cursor, mlflow=mlflow), dg.SkipReason)

    # A rollback to v1 is a move too, with a run key of its own.
    move_alias(client, "tagger", CHAMPION, "1", actor="test", reason="rollback")
    third = _tick(champion_alias_sensor, second.cursor, mlflow=mlflow)
    keys = [r.run_requests[0].run_key for r in (first, second, third)]
    assert len(set(keys)) == 3
    assert third.run_requests[0].tags["tag_pipeline/previous_champion"] == "2"


def test_schedules_request_their_jobs():
    at = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    for schedule, job in ((retag_job_schedule, "retag_job"),
                          (retrain_job_schedule, "retrain_job")):
        context = dg.build_schedule_context(scheduled_execution_time=at)
        result = schedule.evaluate_tick(context)
        assert len(result.run_requests) == 1
        assert schedule.job_name == job
    assert retag_job_schedule.cron_schedule == "0 2 * * *"


def _load_feedback(instance, tmp_path, name: str, rows: int) -> None:
    """Land a feedback file of ``rows`` actions and materialize the real raw_feedback asset
    (a Dagster run on ``instance``, loading into a warehouse under ``tmp_path``)."""
    # Distinct content per file: a file whose content was loaded before is skipped.
    lines = [f"{name}-p{i},red,accept,user{i},2026-11-28 10:00:00," for i in range(rows)]
    _write(tmp_path / "landing" / "feedback" / name,
           "product_id,tag,action,user_id,timestamp,note\n" + "\n".join(lines))
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text("test-pseudonym-key-0123456789")
    key_file.chmod(0o600)
    resources = {"duckdb": WarehouseResource(database=str(tmp_path / "warehouse.duckdb")),
                 "catalog": _catalog(tmp_path),
                 "pseudonyms": PseudonymResource(key_env="TAG_PIPELINE_NO_SUCH_KEY_VARIABLE",
                                                 key_file=str(key_file))}
    result = dg.materialize([raw_feedback], instance=instance, resources=resources)
    loaded = result.asset_materializations_for_node("raw_feedback")[0].metadata
    assert loaded["rows_loaded_this_run"].value == rows


def _trained(instance) -> None:
    """A successful training, as the instance records it: a tag_model materialization."""
    instance.report_runless_asset_event(dg.AssetMaterialization("tag_model"))


def test_feedback_retrain_sensor_fires_once_per_threshold_crossing(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    resources = {"retrain_policy": RetrainPolicyResource(feedback_threshold=3)}

    def tick(cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources=resources)
        return feedback_retrain_sensor(context)

    # No warehouse yet, then feedback below the threshold: no run.
    assert isinstance(tick(None), dg.SkipReason)
    _trained(instance)
    _load_feedback(instance, tmp_path, "a.csv", 2)
    below = tick(None)
    assert isinstance(below, dg.SkipReason) and "2 feedback events" in below.skip_message

    # Crossing it: one run of retrain_job.
    _load_feedback(instance, tmp_path, "b.csv", 2)
    crossed = tick(None)
    assert len(crossed.run_requests) == 1 and feedback_retrain_sensor.job_name == "retrain_job"
    assert crossed.run_requests[0].tags["tag_pipeline/feedback_events"] == "4"
    # Next tick on the same data: nothing. A tick replayed from the old cursor (the daemon
    # died before storing it) asks for the same run key, which Dagster drops.
    assert isinstance(tick(crossed.cursor), dg.SkipReason)
    assert tick(None).run_requests[0].run_key == crossed.run_requests[0].run_key

    # While a retrain (e.g. the weekly schedule's) runs, more feedback starts nothing.
    _load_feedback(instance, tmp_path, "c.csv", 5)
    running = dg.DagsterRun(job_name="retrain_job", run_id=str(uuid.uuid4()),
                            status=dg.DagsterRunStatus.STARTED)
    instance.add_run(running)
    waiting = tick(crossed.cursor)
    assert isinstance(waiting, dg.SkipReason) and "STARTED" in waiting.skip_message
    instance.delete_run(running.run_id)

    # That retrain finished: its tag_model materialization restarts the count.
    _trained(instance)
    restarted = tick(crossed.cursor)
    assert isinstance(restarted, dg.SkipReason) and "0 feedback events" in restarted.skip_message
    _load_feedback(instance, tmp_path, "d.csv", 3)
    again = tick(crossed.cursor)
    assert len(again.run_requests) == 1
    assert again.run_requests[0].run_key != crossed.run_requests[0].run_key
    assert isinstance(tick(again.cursor), dg.SkipReason)


def test_feedback_retrain_sensor_reads_the_event_log_while_a_run_holds_the_warehouse(
        tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    _load_feedback(instance, tmp_path, "a.csv", 5)
    # A writer (a training or a load) holds the warehouse's lock: the sensor still counts,
    # because it reads the materializations' metadata, not the table.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(60)",
         str(tmp_path / "warehouse.duckdb")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        context = dg.build_sensor_context(
            instance=instance,
            resources={"retrain_policy": RetrainPolicyResource(feedback_threshold=3)})
        result = feedback_retrain_sensor(context)
        assert len(result.run_requests) == 1
        assert result.run_requests[0].tags["tag_pipeline/feedback_events"] == "5"
    finally:
        holder.kill()
        holder.wait()


def test_feedback_count_pages_through_the_event_log_and_ignores_other_assets():
    from tag_pipeline.defs.automation import sensors

    instance = dg.DagsterInstance.ephemeral()
    for rows in range(1, 8):
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "raw_feedback", metadata={"rows_loaded_this_run": rows}))
    instance.report_runless_asset_event(dg.AssetMaterialization(
        "raw_sales", metadata={"rows_loaded_this_run": 1000}))
    assert sensors.feedback_loaded_since(instance, None) == 28
    first = instance.fetch_materializations(dg.AssetKey("raw_feedback"), limit=7,
                                            ascending=True).records[2]
    assert sensors.feedback_loaded_since(instance, first.storage_id) == 28 - 6
    assert sensors.feedback_loaded_since(instance, None, page_size=2) == 28  # four pages


def test_retrain_decision_rejects_bad_settings_and_cursors():
    from tag_pipeline.lib.events.retrain import RetrainState, decide_retrain

    with pytest.raises(ValueError, match="at least 1"):
        decide_retrain(RetrainState(), None, 10, 0)
    with pytest.raises(ValueError, match="cursor is not valid"):
        RetrainState.from_cursor('{"baseline": 1}')
    # A retrain that failed does not ask again until another threshold's worth arrives.
    first = decide_retrain(RetrainState(), 7, 5, 3)
    assert first.run_key == "feedback-retrain-7-1"
    assert decide_retrain(first.state, 7, 7, 3).run_key is None
    assert decide_retrain(first.state, 7, 8, 3).run_key == "feedback-retrain-7-2"


@dg.op
def _breaks() -> None:
    raise RuntimeError("warehouse file is locked by another process")


@dg.job
def _failing_job() -> None:
    _breaks()


def test_failure_sensor_records_the_failed_run(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    result = _failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    operations = OperationsResource(database=str(tmp_path / "ops" / "operations.duckdb"))
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_sensor", dagster_instance=instance,
        dagster_run=result.dagster_run, dagster_event=failure,
        resources={"operations": operations}).for_run_failure()
    run_failure_sensor(context)
    failures = read_failures(tmp_path / "ops" / "operations.duckdb")
    assert failures["run_id"].to_list() == [result.run_id]
    assert failures["job_name"][0] == "_failing_job"
    assert failures["steps"][0] == "_breaks"
    assert "locked by another process" in failures["message"][0]
