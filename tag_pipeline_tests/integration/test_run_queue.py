"""Runs that open the warehouse take turns instead of failing on DuckDB's single-writer lock,
while runs that touch only MLflow start at once: a real Dagster daemon, on a copy of the
trained home. A run whose process is killed (kill -9) is marked failed by the daemon's run
monitor and the queue goes on; ``tag-pipeline doctor`` names such a run until then."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from tag_pipeline.cli import _dead_runs
from tag_pipeline.defs.resources import REPO_ROOT
from tag_pipeline.run_launcher import worker_pid, worker_state
from tag_pipeline_tests.support import SHARED_DATA, TINY_MODEL, home_env

BIN = Path(sys.executable).parent


def _start_home(tmp_path, monkeypatch) -> tuple[dict[str, str], str, dg.DagsterInstance]:
    env = {**os.environ, "TAG_PIPELINE_HOME": str(tmp_path / "home"),
           "DAGSTER_HOME": str(tmp_path / "dagster"),
           "TAG_PIPELINE_SHARED_DATA": str(SHARED_DATA)}
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


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.mark.slow
def test_promotion_runs_beside_training_and_a_killed_run_frees_the_warehouse(
        trained_home_copy, tmp_path, monkeypatch):
    """Under a real daemon, on a copy of the trained home: model_job holds the warehouse pool;
    a catalog_job launched beside it waits in the queue; promote_model_job, which touches only
    MLflow, starts and succeeds while the training runs. The training's worker is then killed
    (kill -9): the run monitor fails it, saying why, and the queued catalog_job starts and
    succeeds; ``tag-pipeline doctor`` names the dead run until the monitor has failed it."""
    home = trained_home_copy
    env = {**home.env, **home_env(home.home)}
    for key, value in home_env(home.home).items():
        monkeypatch.setenv(key, value)
    workspace = str(REPO_ROOT / "workspace.yaml")
    instance = dg.DagsterInstance.get()
    daemon = _daemon(env, workspace, tmp_path)

    def launch(job: str, config: dict | None = None) -> str:
        before = {r.dagster_run.run_id for r in instance.get_run_records()}
        args = [str(BIN / "dagster"), "job", "launch", "-w", workspace, "-j", job]
        if config is not None:
            args += ["--config-json", json.dumps(config)]
        done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        [run_id] = {r.dagster_run.run_id for r in instance.get_run_records()} - before
        return run_id

    def status(run_id: str) -> dg.DagsterRunStatus:
        return instance.get_run_by_id(run_id).status

    try:
        # a training long enough to be killed while it runs
        training = launch("model_job", {"ops": {"tag_model": {"config": {
            **TINY_MODEL, "epochs": 200}}}})
        catalog = launch("catalog_job")
        _wait_for(lambda: status(training) == dg.DagsterRunStatus.STARTED
                  and worker_pid(instance, training), 240, "model_job to start")
        promote = launch("promote_model_job", {"ops": {"promote_model": {"config": {
            "version": "1", "actor": "tests", "reason": "promotion during a training run"}}}})
        _wait_for(lambda: instance.get_run_by_id(promote).is_finished, 180,
                  "promote_model_job to finish")
        assert status(promote) == dg.DagsterRunStatus.SUCCESS
        # it did not wait for the training, which still holds the warehouse; catalog_job does
        assert status(training) == dg.DagsterRunStatus.STARTED
        assert status(catalog) == dg.DagsterRunStatus.QUEUED

        pid = worker_pid(instance, training)[0]
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        # the kill lands at once but the process may take a moment to go: wait until doctor
        # names it or the monitor has already failed the run
        def named_or_failed():
            if status(training) == dg.DagsterRunStatus.FAILURE:
                return ("failed", [])
            found = _dead_runs(home.dagster_home)
            return ("named", found) if found else None

        _, dead = _wait_for(named_or_failed, 30, "doctor to name the dead run")
        if dead:
            # the monitor has not run yet: doctor must name the run
            assert [(r, j) for r, j, _ in dead] == [(training, "model_job")]
            assert _names_dead_worker(dead[0][2], pid), dead[0][2]
        _wait_for(lambda: status(training) == dg.DagsterRunStatus.FAILURE, 90,
                  "the monitor to fail the killed run")
        failed_after = time.monotonic() - killed_at
        # the run's log says why: in the launcher's words (gone, or a zombie its parent has not
        # reaped yet), or the code server's when it saw its worker die first
        messages = [e.message or "" for e in instance.all_logs(training)]
        assert any(_says_why_failed(m, pid, training) for m in messages), \
            "\n".join(messages[-6:])
        # within the monitoring interval of the instance tag-pipeline init writes (15 s),
        # with slack for a loaded machine
        assert failed_after < 60, failed_after
        _wait_for(lambda: instance.get_run_by_id(catalog).is_finished, 300, "the queued run")
        assert status(catalog) == dg.DagsterRunStatus.SUCCESS
        records = {r.dagster_run.run_id: r for r in instance.get_run_records()}
        # the queue held catalog_job until the training had ended (failed)
        assert records[training].end_time <= records[catalog].start_time
        assert _dead_runs(home.dagster_home) == []
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        instance.dispose()
