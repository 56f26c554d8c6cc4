"""Runs started at once queue instead of failing on DuckDB's single-writer lock: a real Dagster
daemon dequeues two catalog_job runs launched together, one after the other."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from tag_pipeline.defs.resources import REPO_ROOT
from tag_pipeline_tests.conftest import SHARED_DATA

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_overlapping_runs_queue_without_lock_errors(tmp_path, monkeypatch):
    env = {**os.environ, "TAG_PIPELINE_HOME": str(tmp_path / "home"),
           "DAGSTER_HOME": str(tmp_path / "dagster"),
           "TAG_PIPELINE_SHARED_DATA": str(SHARED_DATA)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    subprocess.run([str(BIN / "tag-pipeline"), "init"], env=env, check=True,
                   capture_output=True)
    workspace = str(REPO_ROOT / "workspace.yaml")
    # Create the instance's sqlite storage once, before two processes race to create it.
    instance = dg.DagsterInstance.get()
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", workspace], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(2):
            launch = subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", workspace,
                                     "-j", "catalog_job"], env=env, cwd=tmp_path,
                                    capture_output=True, text=True)
            assert launch.returncode == 0, launch.stderr[-3000:]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            records = instance.get_run_records()
            if len(records) == 2 and all(r.dagster_run.is_finished for r in records):
                break
            time.sleep(2)
        records = sorted(instance.get_run_records(), key=lambda r: r.start_time or 0)
        statuses = [r.dagster_run.status for r in records]
        assert statuses == [dg.DagsterRunStatus.SUCCESS] * 2, statuses
        # The queue held the second run until the first had finished.
        assert records[0].end_time <= records[1].start_time
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
