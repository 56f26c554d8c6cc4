"""Only transient errors are retried: a bad profile fails once, at once; an I/O error is tried
again (real Dagster runs with the jobs' retry policy)."""

from __future__ import annotations

import time

import dagster as dg
import duckdb

from tag_pipeline.definitions import RETRY_POLICY
from tag_pipeline.defs.retries import is_transient, retry_only_transient
from tag_pipeline.lib.catalog.profile import ProfileError
from tag_pipeline.lib.sql import SqlModelError
from tag_pipeline_tests.support import run_catalog_job


def _events(result, kind: dg.DagsterEventType) -> list:
    return [e for e in result.all_events if e.event_type == kind]


def test_a_bad_profile_fails_once_with_its_message(tmp_path):
    (tmp_path / "landing").mkdir()
    started = time.monotonic()
    result = run_catalog_job(tmp_path, profile="no_such_profile", raise_on_error=False)
    took = time.monotonic() - started
    assert not result.success
    assert _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []
    failures = _events(result, dg.DagsterEventType.STEP_FAILURE)
    assert failures and len({e.step_key for e in failures}) == len(failures)  # once each
    for failure in failures:
        message = failure.step_failure_data.error.message
        assert "ProfileError" in message and "no_such_profile" in message, message
    assert took < 30, took  # three tries with the back-off took about 40 s


def test_a_transient_error_is_tried_again(tmp_path):
    calls = []

    @dg.asset
    @retry_only_transient
    def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("the landing share went away")
        return len(calls)

    job = dg.define_asset_job("flaky_job", selection=[flaky], op_retry_policy=RETRY_POLICY)
    defs = dg.Definitions(assets=[flaky], jobs=[job])
    result = defs.resolve_job_def("flaky_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral())
    assert result.success and len(calls) == 2
    assert len(_events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)) == 1


def test_which_errors_are_transient():
    assert is_transient(OSError("disk")) and is_transient(TimeoutError())
    assert is_transient(duckdb.IOException("Could not set lock on file"))
    assert not is_transient(ProfileError("profile 'x': no such column"))
    assert not is_transient(SqlModelError("model y: Binder Error"))
    assert not is_transient(duckdb.BinderException("no such column"))
    assert not is_transient(KeyError("price"))
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE

    assert is_transient(MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE))
    assert is_transient(MlflowException("(sqlite3.OperationalError) database is locked"))
    assert not is_transient(MlflowException("no such model", error_code=RESOURCE_DOES_NOT_EXIST))
