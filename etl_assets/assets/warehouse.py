"""Warehouse assets: each raw partition loaded into its target table, replacing that partition's rows.

Each day of a run loads on its own: a day the gate refuses, or whose load fails, leaves the others to load
and be audited, and the step then fails naming the days it did not load.
"""

import dagster as dg
import sqlalchemy as sa

from etl_assets.assets.audit_events import AuditedStep
from etl_assets.checks.gate import gate_refusals
from etl_assets.partitions import backfill_policy, daily_partitions, existing_keys
from etl_assets.translator import raw_key, rejects_key, warehouse_spec
from etl_resources.config.sources_file import AnySource
from etl_resources.warehouse.names import WarehouseNameError
from etl_resources.warehouse.resource import Warehouse, load_partition
from etl_resources.warehouse.schema import effective_schema
from etl_resources.warehouse.types import WarehouseTypeError

# Every load holds a warehouse connection; the instance's pool limit caps them across all runs.
WAREHOUSE_POOL = "warehouse"


def table_schema(engine: sa.Engine, schema: str | None, table: str) -> dg.TableSchema:
    with engine.connect() as conn:
        columns = sa.inspect(conn).get_columns(table, schema=effective_schema(conn, schema))
    return dg.TableSchema(columns=[dg.TableColumn(c["name"], str(c["type"])) for c in columns])


def fix_hint(source: AnySource) -> str:
    return f"fix: see {rejects_key(source).to_user_string()}, correct the source or its contract, then re-materialize {raw_key(source).to_user_string()}"


def build_warehouse_asset(source: AnySource, warehouse_kind: str) -> dg.AssetsDefinition:
    target = source.target
    partitions_def = daily_partitions(source.start_date)

    spec = warehouse_spec(source, warehouse_kind)

    @dg.multi_asset(
        name=spec.key.to_python_identifier(),
        specs=[spec],
        ins={"partition": dg.AssetIn(key=raw_key(source))},
        partitions_def=partitions_def,
        backfill_policy=backfill_policy(source.backfill_days_per_run),
        pool=WAREHOUSE_POOL,
    )
    def _load(context: dg.AssetExecutionContext, partition, warehouse: Warehouse):
        # `partition` is a LazyFrame, or {day: LazyFrame} when the run covers several days (see LakeIOManager).
        by_key = partition if isinstance(partition, dict) else {existing_keys(context, partitions_def)[0]: partition}
        engine = warehouse.engine()
        refusals = gate_refusals(context.instance, source, sorted(by_key))
        loaded: dict[str, dict[str, object]] = {}
        failed: dict[str, str] = {}
        errors: list[Exception] = []
        columns = None
        for key, frame in sorted(by_key.items()):
            step = AuditedStep(context, warehouse, source, key, "load")
            if key in refusals:
                reason = f"not loading {target.qualified} for {key}: {refusals[key]} ({fix_hint(source)})"
                context.log.error(reason)
                step.blocked(reason)
                failed[key] = f"blocked: {refusals[key]}"
                continue
            try:
                result = load_partition(engine, target.schema_, target.table, key, frame, target.write_mode, tuple(target.keys), context.log)
                # Read back by the target's name before the audit says success: rows that landed anywhere else failed.
                columns = table_schema(engine, target.schema_, target.table)
            except (WarehouseNameError, WarehouseTypeError) as err:
                message = f"source '{source.name}', {key}: {err}"
                step.failed(dg.Failure(description=message))
                failed[key] = message
                errors.append(err)
                continue
            except Exception as err:
                step.failed(err)
                context.log.error(f"{target.qualified} {key}: load failed, the day keeps its previous rows: {type(err).__name__}: {err}")
                failed[key] = f"{type(err).__name__}: {err}"
                errors.append(err)
                continue
            step.succeeded(rows=result.rows, files=result.files)
            if result.added_columns:
                context.log.info(f"{result.table}: added columns the source grew: {', '.join(result.added_columns)}")
            loaded[key] = {"dagster/row_count": result.rows, "parquet_files": result.files}
        common = {"warehouse": warehouse.display_url()} | ({"dagster/column_schema": columns} if columns is not None else {})
        if not failed:
            for key, metadata in loaded.items():
                context.add_asset_metadata(metadata, partition_key=key)
            yield dg.MaterializeResult(metadata=common)
            return
        # The loaded days are materialized one by one; the step then fails, so only the others show as failed.
        for key, metadata in loaded.items():
            yield dg.AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=metadata | common)
        raise dg.Failure(
            description=f"{target.qualified}: {len(failed)} of {len(by_key)} day(s) not loaded ({', '.join(failed)}), {len(loaded)} loaded\n"
            + "\n".join(f"- {key}: {reason}" for key, reason in failed.items()),
            metadata={"not_loaded": dg.MetadataValue.json(failed), "loaded": dg.MetadataValue.json(sorted(loaded))},
        ) from (errors[0] if errors else None)

    return _load
