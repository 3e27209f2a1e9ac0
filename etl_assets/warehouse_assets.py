"""Warehouse assets: each raw partition loaded into its target table, replacing that partition's rows."""

import datetime as dt

import dagster as dg
import sqlalchemy as sa

from etl_assets.audit_events import record_audit
from etl_assets.gate import source_gate_failures
from etl_assets.partitions import backfill_policy, daily_partitions, existing_keys
from etl_assets.raw_assets import raw_key
from etl_resources.config import AnySource
from etl_resources.type_mapping import WarehouseTypeError
from etl_resources.warehouse import Warehouse, load_partition
from etl_resources.warehouse_names import WarehouseNameError
from etl_resources.warehouse_schema import effective_schema

# Every load holds a warehouse connection; the instance's pool limit caps them across all runs.
WAREHOUSE_POOL = "warehouse"


def warehouse_key(source: AnySource) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", *([source.target.schema_] if source.target.schema_ else []), source.target.table])


def table_schema(engine: sa.Engine, schema: str | None, table: str) -> dg.TableSchema:
    with engine.connect() as conn:
        columns = sa.inspect(conn).get_columns(table, schema=effective_schema(conn, schema))
    return dg.TableSchema(columns=[dg.TableColumn(c["name"], str(c["type"])) for c in columns])


WRITE_MODE_PHRASES = {
    "replace_partition": "replaced as a whole on every load",
    "merge": "upserted on {keys}",
    "append": "appended on every load",
}


def build_warehouse_asset(source: AnySource, warehouse_kind: str) -> dg.AssetsDefinition:
    target = source.target
    partitions_def = daily_partitions(source.start_date)

    @dg.asset(
        key=warehouse_key(source),
        description=f"{target.qualified} in the warehouse: each day of raw/{source.name}, {WRITE_MODE_PHRASES[target.write_mode].format(keys=', '.join(target.keys))}.",
        ins={"partition": dg.AssetIn(key=raw_key(source))},
        partitions_def=partitions_def,
        backfill_policy=backfill_policy(source.backfill_days_per_run),
        kinds={warehouse_kind, "table"},
        group_name=source.group or source.name,
        metadata={"source": source.name, "dagster/table_name": target.qualified},
        owners=source.owners,
        tags=source.tags,
        pool=WAREHOUSE_POOL,
    )
    def _load(context: dg.AssetExecutionContext, partition, warehouse: Warehouse) -> dg.MaterializeResult:
        # `partition` is a LazyFrame, or {day: LazyFrame} when the run covers several days (see LakeIOManager).
        by_key = partition if isinstance(partition, dict) else {existing_keys(context, partitions_def)[0]: partition}
        engine = warehouse.engine()
        columns = None
        for key, frame in sorted(by_key.items()):
            started = dt.datetime.now(dt.UTC)
            reasons = source_gate_failures(context.instance, source, [key])
            if reasons:
                failure = dg.Failure(
                    description=f"not loading {target.qualified} for {key}: {'; '.join(reasons)} "
                    f"(fix: see rejects/{source.name}, correct the source or its contract, then re-materialize raw/{source.name})"
                )
                record_audit(context, warehouse, source, key, "load", started, error=failure)
                raise failure
            try:
                loaded = load_partition(engine, target.schema_, target.table, key, frame, target.write_mode, tuple(target.keys), context.log)
                # Read back by the target's name before the audit says success: rows that landed anywhere else failed.
                columns = table_schema(engine, target.schema_, target.table)
            except (WarehouseNameError, WarehouseTypeError) as err:
                failure = dg.Failure(description=f"source '{source.name}', {key}: {err}")
                record_audit(context, warehouse, source, key, "load", started, error=failure)
                raise failure from err
            except Exception as err:
                record_audit(context, warehouse, source, key, "load", started, error=err)
                raise
            record_audit(context, warehouse, source, key, "load", started, rows=loaded.rows, files=loaded.files)
            if loaded.added_columns:
                context.log.info(f"{loaded.table}: added columns the source grew: {', '.join(loaded.added_columns)}")
            context.add_asset_metadata({"dagster/row_count": loaded.rows, "parquet_files": loaded.files}, partition_key=key)
        return dg.MaterializeResult(metadata={"dagster/column_schema": columns, "warehouse": warehouse.display_url()})

    return _load
