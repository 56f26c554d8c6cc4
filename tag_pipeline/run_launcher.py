"""A run launcher that notices when a run's process died, so a crashed run never blocks the queue.

Dagster's ``DefaultRunLauncher`` starts each run as a local process but cannot tell the run
monitor (``run_monitoring`` in ``dagster.yaml``) whether that process is still alive: a run
whose worker was killed (``kill -9``, the OOM killer, a reboot) stays STARTED for ever, and
as it holds the ``warehouse`` pool's one slot no sensor, schedule or UI run that opens the
warehouse starts again.

``LocalRunLauncher`` is the default launcher plus that health check: the run worker records
its pid in the run's event log ("Started process for run (pid: N)"); the check looks the pid
up on this machine and reports the worker FAILED when no such process exists, when it is a
zombie, or when the pid now belongs to a process started after the run's worker (a reused
pid). The daemon's run monitor then marks the run failed within ``poll_interval_seconds`` and
the queue goes on. ``tag-pipeline init`` writes both settings; ``tag-pipeline doctor`` reports
runs whose worker is gone.

This fits the embedded default, where the code server and the daemon share a machine. With a
code server on another machine, use a launcher that knows where its workers run (Docker,
Kubernetes), which have their own health checks.

The module imports only Dagster: the daemon loads it with the instance.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRun
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus

_STARTED = re.compile(r"Started process for run \(pid: (\d+)\)")
# a pid whose process started this long after the run's "Started process" event is a reused pid
_START_SLACK_S = 5.0


@dataclass(frozen=True)
class WorkerState:
    """What is known of a run's worker process on this machine."""

    pid: int | None
    alive: bool
    detail: str


def worker_pid(instance: DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid of the run's latest worker process and when it started (epoch seconds), from
    the run's engine events; None when none is recorded yet."""
    found = None
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        match = _STARTED.search(entry.message or "")
        if match:
            found = (int(match.group(1)), float(entry.timestamp))
    return found


def _process_start_epoch(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from /proc; None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in
                    Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _process_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


def worker_state(instance: DagsterInstance, run: DagsterRun) -> WorkerState:
    """Whether the run's worker process is alive on this machine (see the module docstring)."""
    recorded = worker_pid(instance, run.run_id)
    if recorded is None:
        return WorkerState(None, True, "no worker pid recorded yet")
    pid, started = recorded
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return WorkerState(pid, False, f"run worker process {pid} no longer exists")
    except PermissionError:
        pass  # it exists, under another user
    if _process_state(pid) == "Z":
        return WorkerState(pid, False, f"run worker process {pid} has exited (zombie)")
    began = _process_start_epoch(pid)
    if began is not None and began > started + _START_SLACK_S:
        return WorkerState(pid, False, f"run worker process {pid} is gone (the pid now "
                                       f"belongs to a process started "
                                       f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(began))}"
                                       " UTC)")
    return WorkerState(pid, True, f"run worker process {pid} is running")


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` that tells the run monitor when a run's local worker died."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        state = worker_state(self._instance, run)
        if state.alive:
            return CheckRunHealthResult(WorkerStatus.RUNNING, state.detail)
        return CheckRunHealthResult(WorkerStatus.FAILED, state.detail)
