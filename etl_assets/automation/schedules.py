"""A job and a schedule per source: the day that just closed, raw → checks → warehouse in one run.

Partitioned-job schedules rather than declarative automation: each source's cron comes from its config and
shows in the UI as one schedule an operator can pause; a tick asks for exactly one partition (the last
complete UTC day), so the raw extract, its blocking checks and the load share a run and the checks gate
the load inside it. Automation conditions would launch the load as its own run when the raw day lands,
leaving only our cross-run gate between a bad day and the warehouse.
"""

import datetime as dt

import dagster as dg

from etl_assets.partitions import daily_partitions
from etl_assets.translator import raw_key, rejects_key, warehouse_key
from etl_resources.config.sources_file import AnySource
from etl_resources.sources.registry import splits_rejects


def source_job(source: AnySource):
    keys = [raw_key(source), warehouse_key(source)] + ([rejects_key(source)] if splits_rejects(source) else [])
    return dg.define_asset_job(
        name=f"{source.name}_daily",
        selection=dg.AssetSelection.assets(*keys),
        partitions_def=daily_partitions(source.start_date),
        description=f"One day of {source.name}: extract to the lake, check, load {source.target.qualified}.",
        tags={"source": source.name},
    )


def source_schedule(source: AnySource, job) -> dg.ScheduleDefinition:
    """Any cron from config (Dagster's partitioned-job schedules only take the partition's own cadence);
    each tick asks for the last complete UTC day as of the tick's time."""

    @dg.schedule(
        name=f"{source.name}_schedule",
        cron_schedule=source.schedule,
        job=job,
        execution_timezone="UTC",
        description=f"{source.name}: the last complete UTC day, on '{source.schedule}' (UTC).",
        # The schedule is configuration the user wrote down; it should not wait for someone to switch it on.
        default_status=dg.DefaultScheduleStatus.RUNNING,
        tags={"source": source.name},
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        day = context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)
        if day < source.start_date:
            return dg.SkipReason(f"{source.name}: no complete day yet since start_date {source.start_date}")
        return dg.RunRequest(partition_key=day.isoformat())

    return _schedule
