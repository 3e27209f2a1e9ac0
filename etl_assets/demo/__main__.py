"""Materialize the demo end to end for the last few days, as one run, and say where the data landed.

Usage: python -m etl_assets.demo [DAYS]   (run from the repo root with DAGSTER_HOME set, as scripts/demo.sh does)
"""

import datetime as dt
import sys
import warnings

import dagster as dg
import sqlalchemy as sa

from etl_assets.definitions import defs
from etl_assets.demo.events_api import DEMO_API_PORT, serve
from etl_assets.partitions import range_tags
from etl_resources.lake.io_manager import dataset_name
from etl_resources.lake.store import Lake, read_manifest
from etl_resources.warehouse.audit import audit_log
from etl_resources.warehouse.resource import Warehouse
from etl_resources.warehouse.schema import effective_schema


def start_demo_api() -> None:
    try:
        serve(DEMO_API_PORT)
        print(f"Started the demo ecom-events API on http://127.0.0.1:{DEMO_API_PORT}")
    except OSError:
        print(f"Port {DEMO_API_PORT} is taken; using the ecom-events API already there (scripts/dev.sh starts one)")


def main(days: int) -> int:
    start_demo_api()
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    keys = [(last - dt.timedelta(days=n)).isoformat() for n in reversed(range(days))]
    print(f"Materializing every demo asset for {keys[0]} .. {keys[-1]} in one run")
    # The range is one run by its tags; the sources' differing backfill policies only matter to backfills.
    warnings.filterwarnings("ignore", message=".*materializes assets with varying BackfillPolicies")
    result = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        resources=defs.resources,
        instance=dg.DagsterInstance.get(),
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        tags=range_tags(keys[0], keys[-1]),
        # A blocked day fails its own load step; the other sources' steps still run.
        raise_on_error=False,
    )
    with dg.build_resources(defs.resources) as resources:
        report(resources.lake_io_manager.lake(), resources.warehouse, keys, result)
    if not result.success:
        print("The demo run failed; see the log above.", file=sys.stderr)
        return 1
    return 0


def report(lake: Lake, warehouse: Warehouse, keys: list[str], result: dg.ExecuteInProcessResult) -> None:
    asset_keys = sorted((key for assets_def in defs.assets for key in assets_def.keys), key=lambda k: k.path)
    print(f"\nRun {result.run_id} {'succeeded' if result.success else 'FAILED'}.\n\nLake (Parquet): {lake.display_root}")
    for asset_key in asset_keys:
        if asset_key.path[0] in ("raw", "rejects"):
            dataset = dataset_name(asset_key, defs.resolve_assets_def(asset_key).metadata_by_key[asset_key])
            for key in keys:
                manifest = read_manifest(lake, dataset, key)
                if manifest is None:
                    print(f"  {lake.display(lake.partition_dir(dataset, key))}/  not written")
                    continue
                print(f"  {lake.display(lake.partition_dir(dataset, key))}/  {manifest['rows']:>6,} rows in {len(manifest['files'])} file(s)")
    print("\nChecks (one verdict per day):")
    by_check: dict[tuple[str, str], list[dg.AssetCheckEvaluation]] = {}
    for evaluation in result.get_asset_check_evaluations():
        by_check.setdefault((evaluation.asset_key.to_user_string(), evaluation.check_name), []).append(evaluation)
    for (asset, check), evaluations in sorted(by_check.items()):
        failed = [e for e in evaluations if not e.passed]
        if all(e.partition is None for e in evaluations):
            print(f"  {asset} {check}: {'passed' if not failed else 'FAILED'}")
        else:
            print(f"  {asset} {check}: passed on {len(evaluations) - len(failed)} of {len(evaluations)} day(s)")
        for e in sorted(failed, key=lambda e: e.partition or ""):
            print(f"    {e.partition or 'all days'} FAILED ({e.severity.value}){' - ' + e.description if e.description else ''}")
    print(f"\nWarehouse: {warehouse.display_url()}")
    with warehouse.engine().connect() as conn:
        for asset_key in asset_keys:
            if asset_key.path[0] == "warehouse":
                schema, _, name = defs.resolve_assets_def(asset_key).metadata_by_key[asset_key]["dagster/table_name"].rpartition(".")
                table = sa.table(name, sa.column("_partition"), schema=effective_schema(conn, schema or None))
                count = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c._partition.in_(keys))).scalar_one()
                print(f"  {table.fullname:<16} {count:>6,} rows for these days")
        audited = conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(audit_log.c.run_id == result.run_id)).scalar_one()
        print(f"  {audit_log.name:<16} {audited:>6,} rows for this run")
    print("\nOpen the same in the Dagster UI: bash scripts/dev.sh, then http://127.0.0.1:3000")


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
