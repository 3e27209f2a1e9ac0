"""Materialize the demo end to end for the last few days, as one run, and say where the data landed.

Usage: python -m etl_assets.demo [DAYS]   (run from the repo root with DAGSTER_HOME set, as scripts/demo.sh does)
"""

import datetime as dt
import sys

import dagster as dg
import sqlalchemy as sa

from etl_assets.definitions import defs
from etl_resources.lake import read_manifest
from etl_resources.lake_io_manager import dataset_name


def main(days: int) -> int:
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    start, end = (last - dt.timedelta(days=days - 1)).isoformat(), last.isoformat()
    print(f"Materializing every demo asset for {start} .. {end} in one run")
    result = dg.materialize(
        list(defs.assets),
        resources=defs.resources,
        instance=dg.DagsterInstance.get(),
        tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
    )
    if not result.success:
        print("The demo run failed; see the log above.", file=sys.stderr)
        return 1
    lake = defs.resources["lake_io_manager"].lake()
    warehouse = defs.resources["warehouse"]
    print(f"\nRun {result.run_id} succeeded.\n\nLake (Parquet): {lake.display_root}")
    for asset in defs.assets:
        name = dataset_name(asset.key)
        if name.startswith("raw/"):
            for partition in (start, end):
                manifest = read_manifest(lake, name, partition)
                print(f"  {lake.display(lake.partition_dir(name, partition))}/  {manifest['rows']:>6,} rows, {len(manifest['files'])} file(s)")
    print(f"\nWarehouse: {warehouse.display_url()}")
    with warehouse.engine().connect() as conn:
        for table in ("orders", "customers", "etl_audit_log"):
            count = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            print(f"  {table:<14} {count:>6,} rows")
    print("\nOpen the same in the Dagster UI: bash scripts/dev.sh, then http://127.0.0.1:3000")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
