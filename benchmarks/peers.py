"""dlt's cases, run as their own processes from .etl/bench-venv by benchmarks.run.

Usage: python benchmarks/peers.py CASE JSON_ARGS   → prints one JSON line {"rows": N, "seconds": S}
"""

import glob
import json
import sys
import time

import dlt
import pyarrow.parquet as pq
from dlt.sources.sql_database import sql_table


def _extract(args: dict, backend: str, **backend_kwargs) -> dict:
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{backend}",
        pipelines_dir=f"{args['work']}/dlt-pipelines",
        destination=dlt.destinations.filesystem(bucket_url=f"{args['work']}/dlt-{backend}"),
        dataset_name="bench",
    )
    source = sql_table(credentials=args["source_sqlalchemy"], table="bench", backend=backend, chunk_size=100_000, backend_kwargs=backend_kwargs or None)
    started = time.perf_counter()
    info = pipeline.run(source, loader_file_format="parquet")
    seconds = time.perf_counter() - started
    info.raise_on_failed_jobs()
    files = glob.glob(f"{args['work']}/dlt-{backend}/bench/bench/*.parquet")
    return {"rows": sum(pq.ParquetFile(f).metadata.num_rows for f in files), "seconds": seconds}


def dlt_connectorx(args: dict) -> dict:
    return _extract(args, "connectorx", return_type="arrow_stream")


def dlt_pyarrow(args: dict) -> dict:
    return _extract(args, "pyarrow")


def dlt_load(args: dict) -> dict:
    """dlt loading the same Parquet files into a new PostgreSQL table."""
    files = sorted(glob.glob(f"{args['work']}/lake/raw/bench/date=*/*.parquet"))

    @dlt.resource(name="bench_dlt", write_disposition="replace")
    def tables():
        for file in files:
            yield pq.read_table(file)

    pipeline = dlt.pipeline(
        pipeline_name="bench_load",
        pipelines_dir=f"{args['work']}/dlt-pipelines",
        destination=dlt.destinations.postgres(credentials=args["warehouse_dsn"]),
        dataset_name="dlt_load",
    )
    started = time.perf_counter()
    info = pipeline.run(tables())
    seconds = time.perf_counter() - started
    info.raise_on_failed_jobs()
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return {"rows": rows, "seconds": seconds}


CASES = {f.__name__: f for f in (dlt_connectorx, dlt_pyarrow, dlt_load)}

if __name__ == "__main__":
    print(json.dumps(CASES[sys.argv[1]](json.loads(sys.argv[2]))))
