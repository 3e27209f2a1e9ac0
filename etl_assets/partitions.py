"""Partition definitions: one partition per UTC day from a source's start date, and weeks for exports."""

import datetime as dt
import functools

import dagster as dg

# Dagster's tags for one run over a range of partitions (a single-run backfill).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def range_tags(start: str, end: str) -> dict[str, str]:
    return {RANGE_START_TAG: start, RANGE_END_TAG: end}


@functools.cache
def daily_partitions(start_date: dt.date) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start_date.isoformat(), timezone="UTC")


@functools.cache
def weekly_partitions(start_date: dt.date) -> dg.WeeklyPartitionsDefinition:
    """Monday to Sunday in UTC (ISO weeks), the seed's week window; each week is seven of the daily partitions."""
    return dg.WeeklyPartitionsDefinition(start_date=start_date.isoformat(), day_offset=1, timezone="UTC")


def backfill_policy(days_per_run: int | None) -> dg.BackfillPolicy:
    return dg.BackfillPolicy.single_run() if days_per_run is None else dg.BackfillPolicy.multi_run(max_partitions_per_run=days_per_run)


def partition_window(partitions_def: dg.DailyPartitionsDefinition, partition_key: str) -> tuple[dt.datetime, dt.datetime]:
    window = partitions_def.time_window_for_partition_key(partition_key)
    return window.start.astimezone(dt.UTC), window.end.astimezone(dt.UTC)


def existing_keys(context: dg.AssetExecutionContext, partitions_def: dg.DailyPartitionsDefinition) -> list[str]:
    """The run's days that exist: a requested range may run past the last complete day."""
    return [key for key in context.partition_keys if partitions_def.has_partition_key(key)]
