"""The warehouse resource and the partition load: delete the partition's rows and insert the new ones, in one transaction."""

import datetime as dt
import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import sqlalchemy as sa
from pydantic import PrivateAttr

from etl_resources.adbc import connect_adbc
from etl_resources.mssql_load import FAST_EXECUTEMANY_ROWS, fast_insert, uses_fast_executemany
from etl_resources.prefetch import prefetch
from etl_resources.progress import Progress
from etl_resources.secrets import SecretResolver
from etl_resources.type_mapping import polars_dtype
from etl_resources.warehouse_schema import ensure_table, table_plan

DEFAULT_WAREHOUSE_URL = "sqlite:///.etl/warehouse.db"
INSERT_CHUNK_ROWS = 10_000
COPY_CHUNK_ROWS = 25_000


class Warehouse(dg.ConfigurableResource):
    """The target database: a SQLite file by default, PostgreSQL or Azure SQL (`mssql+pyodbc`) by URL."""

    url: str = DEFAULT_WAREHOUSE_URL
    secrets: dg.ResourceDependency[SecretResolver]
    _engine: sa.Engine | None = PrivateAttr(default=None)

    def engine(self) -> sa.Engine:
        if self._engine is None:
            url = self.secrets.url(self.url)
            if url.get_backend_name() == "sqlite" and url.database:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            self._engine = sa.create_engine(url, pool_pre_ping=True)
        return self._engine

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def display_url(self) -> str:
        return self.engine().url.render_as_string(hide_password=True)


def _nested_as_json(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Lists and structs (e.g. PostgreSQL arrays) become JSON text, which every warehouse dialect can hold."""
    nested = [name for name, dtype in frame.collect_schema().items() if dtype.is_nested()]
    return frame.with_columns(
        pl.col(name).map_batches(_json_series, return_dtype=pl.String) for name in nested
    )


def _json_series(series: pl.Series) -> pl.Series:
    return pl.Series(series.name, [None if v is None else json.dumps(v, default=str) for v in series.to_list()], dtype=pl.String)


def _counted(frame: pl.LazyFrame, chunk: int, progress: Progress, files: set[str]) -> Iterator[pl.DataFrame]:
    for batch in frame.collect_batches(chunk_size=chunk):
        if batch.height:
            files.update(batch.get_column("_source_file").unique().to_list())
            progress.add(batch.height)
            yield batch


@dataclass(frozen=True)
class PartitionLoad:
    partition_key: str
    rows: int
    files: int
    table: str
    added_columns: list[str]


def replace_partition(
    engine: sa.Engine,
    schema: str | None,
    table_name: str,
    partition_key: str,
    frame: pl.LazyFrame,
    log: logging.Logger | None = None,
) -> PartitionLoad:
    """Make the table hold exactly this partition's rows for `partition_key`; all or nothing.

    `frame` carries a `_source_file` column. Table creation, new columns, the delete and the inserts
    share one transaction, so a failed or killed load leaves the table as it was.
    """
    loaded_at = dt.datetime.now(dt.UTC)
    frame = _nested_as_json(frame).with_columns(pl.lit(loaded_at).alias("_loaded_at"), pl.lit(partition_key).alias("_partition"))
    progress = Progress(log, f"{table_name} {partition_key}")
    files: set[str] = set()
    if engine.dialect.name == "postgresql":
        table, added = _replace_postgres(engine, schema, table_name, partition_key, frame, progress, files)
    else:
        with engine.begin() as conn:
            table, added = ensure_table(conn, schema, table_name, frame.collect_schema())
            conn.execute(table.delete().where(table.c["_partition"] == partition_key))
            if uses_fast_executemany(conn.dialect):
                fast_insert(conn, table, _counted(frame, FAST_EXECUTEMANY_ROWS, progress, files))
            else:
                for batch in _counted(frame, INSERT_CHUNK_ROWS, progress, files):
                    conn.execute(table.insert(), batch.to_dicts())
    if log:
        log.info(f"{table.fullname} {partition_key}: loaded {progress.summary()}")
    return PartitionLoad(partition_key=partition_key, rows=progress.rows, files=len(files), table=table.fullname, added_columns=added)


def _replace_postgres(
    engine: sa.Engine, schema: str | None, table_name: str, partition_key: str, frame: pl.LazyFrame, progress: Progress, files: set[str]
) -> tuple[sa.Table, list[str]]:
    """DDL, delete and a binary COPY of Arrow batches (ADBC ingest), all in one ADBC transaction."""
    import pyarrow as pa

    with engine.connect() as probe:
        ddl, table, added = table_plan(probe, schema, table_name, frame.collect_schema())
        dialect = probe.dialect
    # Binary COPY wants each column in exactly the table's type.
    target = {column.name: polars_dtype(column.type, "postgresql") for column in table.columns}
    frame = frame.cast({name: dtype for name, dtype in target.items() if dtype is not None and name in frame.collect_schema()})
    # Parquet decoding runs on a read-ahead thread while the driver encodes and sends the previous batch.
    batches = prefetch(record_batch for batch in _counted(frame, COPY_CHUNK_ROWS, progress, files) for record_batch in batch.to_arrow().to_batches())
    statements = [str(statement.compile(dialect=dialect)) for statement in ddl]
    delete = table.delete().where(table.c["_partition"] == partition_key)
    statements.append(str(delete.compile(dialect=dialect, compile_kwargs={"literal_binds": True})))
    try:
        first = next(batches, None)
        with connect_adbc(engine.url) as conn:
            try:
                with conn.cursor() as cursor:
                    for statement in statements:
                        cursor.execute(statement)
                    if first is not None:
                        reader = pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], batches))
                        cursor.adbc_ingest(table.name, reader, mode="append", db_schema_name=table.schema)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
    finally:
        batches.close()
    return table, added
