"""Sensors, schedules and the failure sensor, evaluated with real contexts: cursors and run
keys over repeated ticks and a restart, a real sqlite MLflow registry, a real failed run."""

import json
import os
from datetime import UTC, datetime

import dagster as dg
import pytest

from tag_pipeline.defs.automation.failures import run_failure_sensor
from tag_pipeline.defs.automation.schedules import retag_job_schedule, retrain_job_schedule
from tag_pipeline.defs.automation.sensors import (
    catalog_files_sensor,
    champion_alias_sensor,
    landing_sensor,
)
from tag_pipeline.defs.resources import CatalogResource, MlflowResource, OperationsResource
from tag_pipeline.lib.landing import new_files
from tag_pipeline.lib.operations import read_failures
from tag_pipeline_tests.conftest import SHARED_DATA


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
