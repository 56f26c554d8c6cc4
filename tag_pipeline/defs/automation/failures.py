"""Failed runs are recorded in the operations log (and the sensor's own log)."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from tag_pipeline.defs.resources import OperationsResource


def _root_message(error) -> str:
    """The innermost cause's message (Dagster wraps the user's exception in its own)."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return error.message.strip()


@dg.run_failure_sensor(name="run_failure_sensor", monitor_all_code_locations=False,
                       default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Records every failed run of this project in the "
                                   "pipeline_failures table of the operations log.")
def run_failure_sensor(context: dg.RunFailureSensorContext,
                       operations: OperationsResource) -> None:
    """Write the failed run, its failed steps and the error into pipeline_failures."""
    from tag_pipeline.lib.operations import record_failure

    run = context.dagster_run
    steps = [e.step_key for e in context.get_step_failure_events() if e.step_key]
    messages = [_root_message(e.event_specific_data.error)
                for e in context.get_step_failure_events()
                if getattr(e.event_specific_data, "error", None) is not None]
    message = "\n".join(messages) or context.failure_event.message or "run failed"
    record_failure(Path(operations.database), run_id=run.run_id, job_name=run.job_name,
                   failed_at=datetime.now(UTC), steps=steps, message=message,
                   trigger=run.tags.get("tag_pipeline/trigger") or run.tags.get(
                       "dagster/schedule_name") or run.tags.get("dagster/sensor_name"))
    context.log.error(f"run {run.run_id} of {run.job_name} failed at "
                      f"{', '.join(steps) or 'run level'}: {message.splitlines()[0][:300]}")
