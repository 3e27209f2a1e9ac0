"""Our cases and the COPY floors, each run as its own process by benchmarks.run.

Usage: python -m benchmarks.cases CASE JSON_ARGS   → prints one JSON line {"rows": N, "seconds": S, ...}
"""

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import psycopg
import sqlalchemy as sa

from etl_assets.definitions import build_definitions
from etl_assets.partitions import RANGE_START_TAG, range_tags
from etl_assets.translator import raw_dataset, raw_key, rejects_key, warehouse_key
from etl_resources.config.sources_file import AnySource, load_sources

DAY = "2026-11-01"
CONTRACT = """
    contract:
      extra_columns: drop
      columns:
        id: {type: int, required: true}
        customer_id: {type: int, required: true, min: 0}
        status: {type: string, allowed: [new, paid, shipped, done]}
        amount: {type: "decimal(12,2)", min: 0}
        score: {type: float}
        created_at: {type: timestamp, required: true}
        updated_at: {type: timestamp}
        active: {type: bool}
        note: {type: string, not_empty: true}
        day: {type: date}
"""


def sources_yaml(url: str, table: str, contract: bool = False, incremental: bool = False, start: str = DAY) -> str:
    mode = "incremental\n    watermark_column: created_at" if incremental else "snapshot"
    return f"""
sources:
  - name: {table}
    kind: sql
    connection: {url}
    table: {table}
    mode: {mode}
    start_date: {start}
    batch_size: 100000
    target: {{table: {table}}}
    checks: {{schema_change: false}}
{CONTRACT if contract else ""}"""


def definitions(work: Path, yaml_text: str, warehouse: str) -> tuple[dg.Definitions, AnySource]:
    """The code location for one source, and that source (whose asset keys a case selects)."""
    path = work / f"sources-{abs(hash(yaml_text))}.yaml"
    path.write_text(yaml_text)
    os.environ["ETL_LAKE_URL"] = str(work / "lake")
    os.environ["ETL_WAREHOUSE_URL"] = warehouse
    return build_definitions(path, str(work / "secrets.toml")), load_sources(path, None).sources[0]


def materialize(defs: dg.Definitions, keys: list[dg.AssetKey], **kwargs) -> float:
    # A deployment's instance exists before any run; creating a fresh one (schema migrations) is not the asset's cost.
    instance = dg.DagsterInstance.get()
    started = time.perf_counter()
    result = dg.materialize(
        list(defs.assets),
        resources=defs.resources,
        instance=instance,
        selection=keys,
        raise_on_error=True,
        **kwargs,
    )
    assert result.success
    return time.perf_counter() - started


def ours_extract(args: dict) -> dict:
    table = "bench"
    defs, source = definitions(Path(args["work"]), sources_yaml(args["source"], table, contract=args.get("contract", False)), args["warehouse"])
    keys = [raw_key(source)] + ([rejects_key(source)] if source.contract is not None else [])
    seconds = materialize(defs, keys, partition_key=DAY)
    files = sorted((Path(args["work"]) / f"lake/{raw_dataset(table)}/date={DAY}").glob("*.parquet"))
    schema = pl.read_parquet_schema(files[0])
    return {"rows": pl.scan_parquet(files).select(pl.len()).collect().item(), "seconds": seconds, "schema": {k: str(v) for k, v in schema.items()}}


def ours_load(args: dict) -> dict:
    defs, source = definitions(Path(args["work"]), sources_yaml(args["source"], "bench"), args["warehouse"])
    seconds = materialize(defs, [warehouse_key(source)], partition_key=DAY)
    with sa.create_engine(args["warehouse"]).connect() as conn:
        rows = conn.execute(sa.text("SELECT COUNT(*) FROM bench")).scalar_one()
    return {"rows": rows, "seconds": seconds}


def ours_backfill(args: dict) -> dict:
    table, first = "events30", "2026-10-01"
    defs, source = definitions(Path(args["work"]), sources_yaml(args["source"], table, incremental=True, start=first), args["warehouse"])
    last = (dt.date.fromisoformat(first) + dt.timedelta(days=29)).isoformat()
    instance = dg.DagsterInstance.get()
    started = time.perf_counter()
    result = dg.materialize(
        list(defs.assets), resources=defs.resources, instance=instance, selection=[raw_key(source), warehouse_key(source)], tags=range_tags(first, last)
    )
    seconds = time.perf_counter() - started
    runs = len(instance.get_run_records(dg.RunsFilter(tags={RANGE_START_TAG: first})))
    with sa.create_engine(args["warehouse"]).connect() as conn:
        rows, partitions = conn.execute(sa.text(f"SELECT COUNT(*), COUNT(DISTINCT _partition) FROM {table}")).one()
    return {"rows": rows, "seconds": seconds, "partitions": partitions, "runs": runs, "success": result.success}


def naive_executemany(args: dict) -> dict:
    """The seeds' loader: every row a dict, INSERT … VALUES through SQLAlchemy executemany."""
    files = sorted((Path(args["work"]) / f"lake/{raw_dataset('bench')}/date={DAY}").glob("*.parquet"))
    engine = sa.create_engine(args["warehouse"])
    started = time.perf_counter()
    rows = 0
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE naive AS SELECT * FROM bench WITH NO DATA"))
        table = sa.Table("naive", sa.MetaData(), autoload_with=conn)
        columns = [c.name for c in table.columns if not c.name.startswith("_")]
        for file in files:
            frame = pl.read_parquet(file, columns=columns)
            conn.execute(table.insert(), frame.to_dicts())
            rows += frame.height
    return {"rows": rows, "seconds": time.perf_counter() - started}


def copy_extract_floor(args: dict) -> dict:
    """A binary COPY stream read and thrown away: what one connection can deliver at all."""
    started = time.perf_counter()
    with psycopg.connect(args["source_dsn"]) as conn, conn.cursor() as cursor, cursor.copy("COPY bench TO STDOUT (FORMAT binary)") as copy:
        size = sum(len(chunk) for chunk in copy)
    with psycopg.connect(args["source_dsn"]) as conn:
        rows = conn.execute("SELECT COUNT(*) FROM bench").fetchone()[0]
    return {"rows": rows, "seconds": time.perf_counter() - started, "bytes": size}


def _server_copy(dsn: str, table: str, setup: list[str], binary_file: str) -> dict:
    """Time the server reading a binary COPY file into `table`, made by `setup` first."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in setup:
            conn.execute(statement)
        started = time.perf_counter()
        conn.execute(f"COPY {table} FROM '{binary_file}' (FORMAT binary)")
        seconds = time.perf_counter() - started
        rows = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    return {"rows": rows, "seconds": seconds}


def copy_load_floor(args: dict) -> dict:
    """The server reading a binary COPY file straight into a new table."""
    return _server_copy(args["source_dsn"], "copy_floor", ["CREATE TABLE copy_floor (LIKE bench)"], args["binary_file"])


CASES = {f.__name__: f for f in (ours_extract, ours_load, ours_backfill, naive_executemany, copy_extract_floor, copy_load_floor)}

if __name__ == "__main__":
    print(json.dumps(CASES[sys.argv[1]](json.loads(sys.argv[2]))))
