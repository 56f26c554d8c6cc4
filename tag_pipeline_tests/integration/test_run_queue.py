"""Runs started at once queue instead of failing on DuckDB's single-writer lock: a real Dagster
daemon dequeues two catalog_job runs launched together, one after the other. A run whose
process is killed (kill -9) is marked failed by the daemon's run monitor and the queue goes on;
``tag-pipeline doctor`` names such a run until then."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tag_pipeline.cli import _dead_runs
from tag_pipeline.defs.resources import REPO_ROOT
from tag_pipeline.run_launcher import worker_pid, worker_state
from tag_pipeline_tests.support import BASIC_PROFILE, HEADER, SHARED_DATA

BIN = Path(sys.executable).parent


def _small_catalog(folder: Path, n: int = 40) -> Path:
    """A small catalog and its profile: runs that queue need not load the demo catalog."""
    data = folder / "data"
    (data / "images").mkdir(parents=True)
    rows = [f"S{i},Solid Shirt {i},Cotton shirt,,99,2026-11-01,Apparel > Tops > Shirts,"
            f"color: Blue; gender: Men,Casual,Acme" for i in range(n)]
    (data / "products.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    profile = folder / "shop.yaml"
    profile.write_text(yaml.safe_dump(BASIC_PROFILE), encoding="utf-8")
    return profile


def _start_home(tmp_path, monkeypatch, profile: Path | None = None
                ) -> tuple[dict[str, str], str, dg.DagsterInstance]:
    env = {**os.environ, "TAG_PIPELINE_HOME": str(tmp_path / "home"),
           "DAGSTER_HOME": str(tmp_path / "dagster"),
           "TAG_PIPELINE_SHARED_DATA": str(SHARED_DATA)}
    if profile is not None:
        env["TAG_PIPELINE_PROFILE"] = str(profile)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    subprocess.run([str(BIN / "tag-pipeline"), "init"], env=env, check=True,
                   capture_output=True)
    # the instance's sqlite storage is created here, before two processes race to create it
    return env, str(REPO_ROOT / "workspace.yaml"), dg.DagsterInstance.get()


def _daemon(env: dict[str, str], workspace: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", workspace], env=env, cwd=cwd,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.mark.slow
def test_overlapping_runs_queue_without_lock_errors(tmp_path, monkeypatch):
    env, workspace, instance = _start_home(tmp_path, monkeypatch,
                                           _small_catalog(tmp_path / "catalog"))
    daemon = _daemon(env, workspace, tmp_path)
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


def test_a_dead_worker_is_told_apart_from_a_live_one(tmp_path, monkeypatch):
    # a real instance and real processes: a run whose recorded worker pid is alive, then
    # killed with SIGKILL
    _, _, instance = _start_home(tmp_path, monkeypatch)
    assert type(instance.run_launcher).__name__ == "LocalRunLauncher"
    assert instance.run_monitoring_enabled
    run = instance.create_run_for_job(dg.GraphDefinition(name="noop").to_job(),
                                      run_id="deadbeef-0000-4000-8000-000000000001")
    assert worker_state(instance, run).alive  # no worker recorded yet: nothing to judge
    worker = subprocess.Popen(["sleep", "600"])
    try:
        instance.report_engine_event(f"Started process for run (pid: {worker.pid}).", run)
        assert worker_pid(instance, run.run_id)[0] == worker.pid
        state = worker_state(instance, run)
        assert state.alive and str(worker.pid) in state.detail
        assert instance.run_launcher.check_run_worker_health(run).status.value == "RUNNING"
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    state = worker_state(instance, run)
    assert not state.alive and f"process {worker.pid} no longer exists" in state.detail
    assert instance.run_launcher.check_run_worker_health(run).status.value == "FAILED"


def _names_dead_worker(message: str, pid: int) -> bool:
    """Whether ``message`` is the launcher's word that worker ``pid`` died."""
    return (f"run worker process {pid} no longer exists" in message
            or f"run worker process {pid} has exited (zombie)" in message)


def _says_why_failed(message: str, pid: int, run_id: str) -> bool:
    """Whether ``message`` says why the killed run failed: the launcher's health check, or the
    code server, which watches the workers it started and may notice first."""
    return _names_dead_worker(message, pid) or (
        f"Run execution process for {run_id} was terminated by signal 9" in message)


@pytest.mark.slow
def test_a_killed_run_is_failed_by_the_monitor_and_the_queue_goes_on(tmp_path, monkeypatch):
    env, workspace, instance = _start_home(tmp_path, monkeypatch)
    daemon = _daemon(env, workspace, tmp_path)

    def launch() -> None:
        done = subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", workspace,
                               "-j", "catalog_job"], env=env, cwd=tmp_path,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]

    def wait_for(condition, seconds: float, what: str):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out after {seconds} s waiting for {what}")

    try:
        launch()
        first = wait_for(lambda: next(
            (r.dagster_run for r in instance.get_run_records()
             if r.dagster_run.status == dg.DagsterRunStatus.STARTED
             and worker_pid(instance, r.dagster_run.run_id)), None), 240, "a started run")
        pid = worker_pid(instance, first.run_id)[0]
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        launch()  # queued behind the dead run
        dead = _dead_runs(tmp_path / "dagster")
        still_started = instance.get_run_by_id(first.run_id).status == \
            dg.DagsterRunStatus.STARTED
        if still_started:  # the monitor has not run yet: doctor must name the run
            assert [(r, j) for r, j, _ in dead] == [(first.run_id, "catalog_job")]
            assert _names_dead_worker(dead[0][2], pid), dead[0][2]
        wait_for(lambda: instance.get_run_by_id(first.run_id).status
                 == dg.DagsterRunStatus.FAILURE, 90, "the monitor to fail the killed run")
        failed_after = time.monotonic() - killed_at
        # the run's log says why: in the launcher's words (gone, or a zombie its parent has not
        # reaped yet), or the code server's when it saw its worker die first
        messages = [e.message or "" for e in instance.all_logs(first.run_id)]
        assert any(_says_why_failed(m, pid, first.run_id) for m in messages), \
            "\n".join(messages[-6:])
        # within the monitoring interval of the instance tag-pipeline init writes (15 s),
        # with slack for a loaded machine
        assert failed_after < 60, failed_after
        runs = wait_for(lambda: [r for r in instance.get_run_records()
                                 if r.dagster_run.run_id != first.run_id
                                 and r.dagster_run.is_finished], 300, "the queued run")
        assert [r.dagster_run.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]
        assert _dead_runs(tmp_path / "dagster") == []
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
