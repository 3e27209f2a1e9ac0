"""Raw assets: each enabled source's rows for a day, extracted in batches and stored as Parquet by the lake IO manager."""

import datetime as dt

import dagster as dg

from etl_assets.audit_events import record_audit
from etl_assets.kinds import database_kind
from etl_assets.partitions import daily_partitions, partition_window
from etl_resources.config import SqlSource
from etl_resources.lake_io_manager import PartitionStream
from etl_resources.secrets import SecretResolver
from etl_resources.sql_extract import extract
from etl_resources.warehouse import Warehouse


def raw_key(source: SqlSource) -> dg.AssetKey:
    return dg.AssetKey(["raw", source.name])


def build_raw_asset(source: SqlSource) -> dg.AssetsDefinition:
    partitions_def = daily_partitions(source.start_date)

    @dg.asset(
        key=raw_key(source),
        description=source.one_line_description,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={database_kind(source.connection), "parquet"},
        group_name=source.group or source.name,
        io_manager_key="lake_io_manager",
        metadata={"source": source.name, "mode": source.mode, "extract": source.table or source.query},
    )
    def _raw(context: dg.AssetExecutionContext, secrets: SecretResolver, warehouse: Warehouse):
        url = secrets.url(source.connection)
        started = dt.datetime.now(dt.UTC)
        frames = {}
        for key in context.partition_keys:
            window = partition_window(partitions_def, key) if source.mode == "incremental" else None
            if window:
                context.log.info(f"{source.name} {key}: rows with {source.watermark_column} in [{window[0]:%Y-%m-%d %H:%M}, {window[1]:%Y-%m-%d %H:%M}) UTC")

            def report(err: Exception, key: str = key) -> None:
                record_audit(context, warehouse, source, key, "extract", started, error=err)

            frames[key] = PartitionStream(frames=extract(source, url, window), on_failure=report)
        return frames if len(frames) > 1 else frames[context.partition_key]

    return _raw
