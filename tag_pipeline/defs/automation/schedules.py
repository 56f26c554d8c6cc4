"""Schedules: the daily retag and the weekly retrain. Both start STOPPED (Dagster's
convention); turn them on in the UI (Automation) or with ``dagster schedule start``."""

import dagster as dg

retag_job_schedule = dg.ScheduleDefinition(
    name="retag_job_schedule",
    job_name="retag_job",
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every day at 02:00 UTC: tag new and changed products with the champion (the "
                "whole catalog when the champion changed) and rewrite product_tags.",
)

retrain_job_schedule = dg.ScheduleDefinition(
    name="retrain_job_schedule",
    job_name="retrain_job",
    cron_schedule="0 3 * * 0",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every Sunday at 03:00 UTC: rebuild features, retrain and evaluate the tagger "
                "and the refiner, then retag through the registry gate.",
)
