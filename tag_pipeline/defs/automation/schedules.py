"""Schedules: the daily retag, the weekly retrain and the daily sales history. All start
STOPPED (Dagster's convention); turn them on in the UI (Automation) or with
``dagster schedule start``."""

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


def sales_daily_schedule(job) -> dg.ScheduleDefinition:
    """Every day at 00:30 UTC: the partition of the day that just ended (Dagster's partitioned
    schedule targets the latest complete day). Late files for older days need a backfill of
    the days raw_sales reports in ``first_order_day``/``last_order_day``."""
    return dg.build_schedule_from_partitioned_job(
        job, name="sales_daily_schedule", hour_of_day=0, minute_of_hour=30,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Every day at 00:30 UTC: write yesterday's partition of sales_daily.")
