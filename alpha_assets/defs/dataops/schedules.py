"""The daily flow_data schedule: a new RUN_ID every day, discovery first, the chain sensors do the rest."""

# No `from __future__ import annotations`: Dagster inspects the schedule's signature at decoration time.

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from alpha_assets.defs import names
from alpha_assets.defs.dataops.jobs import discovery_job
from alpha_assets.lakehouse.keys import new_run_id

DEFAULT_DAILY_CRON = "15 0 * * *"


def build_daily_schedule(cron: str = DEFAULT_DAILY_CRON, *, running: bool = False) -> ScheduleDefinition:
    """The daily discovery at ``cron`` (UTC), stopped unless ``running``.

    Schedules cannot return partition-add requests, so the tick adds its RUN_ID to ``runs`` itself before
    requesting the run.
    """

    @schedule(
        name="daily_flow_data_schedule",
        cron_schedule=cron,
        execution_timezone="UTC",
        job=discovery_job,
        default_status=DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED,
        description=f"flow_data every day at {cron} (UTC): a new RUN_ID, then the chain sensors.",
    )
    def daily_flow_data_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        run_id = new_run_id(context.scheduled_execution_time)
        if not context.instance.has_dynamic_partition("runs", run_id):
            context.instance.add_dynamic_partitions("runs", [run_id])
        return RunRequest(run_key=run_id, partition_key=run_id, tags={names.RUN_ID_TAG: run_id})

    return daily_flow_data_schedule
