"""Freshness per source: by its `freshness.deadline` (cron, UTC) the day before must be in the warehouse.

Dagster's time-partition freshness checks look at the newest complete partition, not at the last
materialization of any partition, so a backfill of old days cannot make a late source look fresh.
A sensor evaluates them; a failed one shows on the asset and reaches the alert sensor like any check.
"""

import dagster as dg

from etl_resources.config.sources_file import AnySource

SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


def freshness_checks(sources: list[AnySource], warehouse_assets: dict[str, dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """One check definition per source, so each is its own step: a failed load of one source in a run
    never skips the freshness check of another."""
    return [
        check
        for source in sources
        if source.freshness is not None
        for check in dg.build_time_partition_freshness_checks(
            assets=[warehouse_assets[source.name]],
            deadline_cron=source.freshness.deadline,
            timezone="UTC",
            severity=SEVERITY[source.freshness.severity],
        )
    ]


def freshness_sensor(checks: list[dg.AssetChecksDefinition]) -> dg.SensorDefinition:
    return dg.build_sensor_for_freshness_checks(
        freshness_checks=checks,
        name="etl_freshness",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
