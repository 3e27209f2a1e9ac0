"""A sensor per files source: each new or changed landing file starts a run for the day its name says.

The cursor maps each file seen to its version (size and modification time, or ETag), so a file is picked up once,
across ticks and daemon restarts, and again only if it is dropped anew with other content. Several new
files of one day make one run, which reads every file of that day. A day that has not closed yet (UTC)
waits: its files stay out of the cursor until the partition exists.
"""

import json

import dagster as dg

from etl_assets.partitions import daily_partitions
from etl_resources.lake.io_manager import LakeIOManager
from etl_resources.secrets import SecretResolver
from etl_resources.sources.base import Arrivals
from etl_resources.sources.files.model import FileSource

LANDING_FILE_TAG = "etl/landing_files"


def landing_sensor(source: FileSource, job, arrivals: Arrivals) -> dg.SensorDefinition:
    partitions_def = daily_partitions(source.start_date)

    @dg.sensor(
        name=f"{source.name}_landing",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"New files matching {source.pattern} in {source.landing} → a run for their day of {source.name}.",
    )
    def _sensor(context: dg.SensorEvaluationContext, secrets: SecretResolver, lake_io_manager: dg.ResourceParam[LakeIOManager]):
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        # A landing that cannot be reached or listed fails the tick with its LandingError, keeping the cursor.
        files = arrivals(source, secrets, lake_io_manager)
        new_by_day: dict[str, list] = {}
        cursor = {}
        for file in files:
            if seen.get(file.name) == file.version:
                cursor[file.name] = file.version
            elif file.day is None:
                context.log.warning(
                    f"{source.name}: landing file {file.name} has no date matching {source.date_pattern!r}; skipped (fix: rename it or set `date_pattern`)"
                )
                cursor[file.name] = file.version
            elif not partitions_def.has_partition_key(file.day):
                context.log.info(f"{source.name}: {file.name} is for {file.day}, which is not a closed day since {source.start_date}; waiting")
            else:
                new_by_day.setdefault(file.day, []).append(file)
                cursor[file.name] = file.version
        # Files gone from the landing folder leave the cursor, so it never grows past the folder.
        context.update_cursor(json.dumps(cursor, sort_keys=True))
        if not new_by_day:
            return dg.SkipReason(f"no new landing files for {source.name}")
        return [
            dg.RunRequest(
                run_key=f"{day}:" + ",".join(f"{f.name}@{f.version}" for f in new),
                partition_key=day,
                tags={LANDING_FILE_TAG: ", ".join(f.name for f in new)[:4000]},
            )
            for day, new in sorted(new_by_day.items())
        ]

    return _sensor
