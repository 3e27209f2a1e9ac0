"""The warehouse resource and the partition load: replace a partition's rows with the new ones, in one transaction."""

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import sqlalchemy as sa
from pydantic import PrivateAttr

from etl_resources.databases.engines import create_engine, literal_dialect
from etl_resources.databases.type_mapping import polars_dtype
from etl_resources.prefetch import ReadAhead
from etl_resources.progress import Progress
from etl_resources.secrets import SecretResolver
from etl_resources.warehouse import names as warehouse_names
from etl_resources.warehouse.audit_queue import DEFAULT_AUDIT_QUEUE
from etl_resources.warehouse.dialects.mssql import load as mssql_load
from etl_resources.warehouse.dialects.postgresql import copy as pg_copy
from etl_resources.warehouse.dialects.postgresql.partition_swap import Lineage, PartitionSwap, files_pattern
from etl_resources.warehouse.schema import LINEAGE_COLUMNS, ensure_table, is_partitioned, table_plan
from etl_resources.warehouse.write_modes import (
    ROW_NUMBER,
    WriteModeError,
    ensure_keys_index,
    insert_batches,
    numbered,
    prepare_append,
    stage_table,
    upsert_statement,
)

DEFAULT_WAREHOUSE_URL = "sqlite:///.etl/warehouse.db"
INSERT_CHUNK_ROWS = 10_000
COPY_CHUNK_ROWS = 25_000
# `_source_file` comes with the frame (the lake IO manager adds it); these the load adds.
OWN_COLUMNS = tuple(name for name in LINEAGE_COLUMNS if name != "_source_file")


class Warehouse(dg.ConfigurableResource):
    """The target database: a SQLite file by default, PostgreSQL or Azure SQL (`mssql+mssqlpython`, `mssql+pyodbc`) by URL."""

    url: str = DEFAULT_WAREHOUSE_URL
    audit_queue: str = DEFAULT_AUDIT_QUEUE
    secrets: dg.ResourceDependency[SecretResolver]
    _engine: sa.Engine | None = PrivateAttr(default=None)

    def engine(self) -> sa.Engine:
        if self._engine is None:
            url = self.secrets.url(self.url)
            if url.get_backend_name() == "sqlite" and url.database:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            self._engine = create_engine(url, pool_pre_ping=True)
        return self._engine

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def display_url(self) -> str:
        return self.engine().url.render_as_string(hide_password=True)


def _nested_as_json(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Lists and structs (e.g. PostgreSQL arrays) become JSON text, which every warehouse dialect can hold."""
    nested = [name for name, dtype in frame.collect_schema().items() if dtype.is_nested()]
    return frame.with_columns(pl.col(name).map_batches(_json_series, return_dtype=pl.String) for name in nested)


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

    `frame` carries a `_source_file` column. Table creation, new columns and the replace share one
    transaction, so a failed or killed load leaves the table as it was.
    """
    return load_partition(engine, schema, table_name, partition_key, frame, "replace_partition", (), log)


def load_partition(
    engine: sa.Engine,
    schema: str | None,
    table_name: str,
    partition_key: str,
    frame: pl.LazyFrame,
    write_mode: str = "replace_partition",
    keys: tuple[str, ...] = (),
    log: logging.Logger | None = None,
) -> PartitionLoad:
    """Load one day by the target's write mode (see write_modes.py); all or nothing, like the replace."""
    _check_own_columns(engine, table_name, frame)
    frame = _nested_as_json(frame)
    missing = [key for key in keys if key not in frame.collect_schema().names()]
    if missing:
        raise WriteModeError(f"{table_name} {partition_key}: merge keys {missing} are not columns of the source (fix: `target.keys` must name source columns)")
    progress = Progress(log, f"{table_name} {partition_key}")
    files: set[str] = set()
    loaded_at = dt.datetime.now(dt.UTC)
    if engine.dialect.name == "mssql":
        table, added = mssql_load.load_day(engine, schema, table_name, partition_key, frame, write_mode, tuple(keys), _recounted(progress, files), log)
    elif write_mode == "replace_partition" and engine.dialect.name == "postgresql":
        table, added = _replace_postgres(engine, schema, table_name, partition_key, frame, loaded_at, progress, files)
    else:
        table, added = _load_by_mode(
            engine, schema, table_name, partition_key, _with_lineage(frame, loaded_at, partition_key), write_mode, tuple(keys), progress, files
        )
    if log:
        log.info(f"{table.fullname} {partition_key}: loaded ({write_mode}) {progress.summary()}")
    return PartitionLoad(partition_key=partition_key, rows=progress.rows, files=len(files), table=table.fullname, added_columns=added)


def _load_by_mode(
    engine: sa.Engine,
    schema: str | None,
    table_name: str,
    partition_key: str,
    frame: pl.LazyFrame,
    write_mode: str,
    keys: tuple[str, ...],
    progress: Progress,
    files: set[str],
) -> tuple[sa.Table, list[str]]:
    """Every mode through SQLAlchemy executemany (SQLite and others; PostgreSQL's append and merge), in one transaction."""
    with engine.begin() as conn:
        replace = write_mode == "replace_partition"
        table, added = ensure_table(conn, schema, table_name, frame.collect_schema(), partitioned=replace, unique_keys=keys)
        batches = _counted(frame, INSERT_CHUNK_ROWS, progress, files)
        if replace:
            conn.execute(table.delete().where(table.c["_partition"] == partition_key))
            insert_batches(conn, table, batches)
        elif write_mode == "append":
            prepare_append(conn, table, partition_key)
            insert_batches(conn, table, batches)
        else:
            ensure_keys_index(conn, table, keys)
            stage = stage_table(conn, table, frame.collect_schema().names())
            insert_batches(conn, stage, numbered(batches, table, partition_key, keys))
            conn.execute(upsert_statement(conn.dialect, table, stage, keys))
            stage.drop(conn)
    return table, added


def _recounted(progress: Progress, files: set[str]) -> Callable[[pl.LazyFrame, int], Iterator[pl.DataFrame]]:
    """The frame's batches, counted from zero each time: a load that starts over (bulk copy refused) counts once."""

    def batches(frame: pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]:
        progress.restart()
        files.clear()
        return _counted(frame, rows, progress, files)

    return batches


def _check_own_columns(engine: sa.Engine, table_name: str, frame: pl.LazyFrame) -> None:
    """A source column named like the lineage or the merge's row number would be overwritten by it."""
    warehouse_names.check_columns(engine.dialect.name, table_name, frame.collect_schema().names(), reserved=(*OWN_COLUMNS, ROW_NUMBER))


def _with_lineage(frame: pl.LazyFrame, loaded_at: dt.datetime, partition_key: str) -> pl.LazyFrame:
    return frame.with_columns(pl.lit(loaded_at).alias("_loaded_at"), pl.lit(partition_key).alias("_partition"))


def _replace_postgres(
    engine: sa.Engine,
    schema: str | None,
    table_name: str,
    partition_key: str,
    frame: pl.LazyFrame,
    loaded_at: dt.datetime,
    progress: Progress,
    files: set[str],
) -> tuple[sa.Table, list[str]]:
    """A binary COPY of Arrow batches (pgpq-encoded, sent by psycopg) and the DDL around it, in one transaction.

    Tables this platform creates are partitioned, and a load swaps the day's partition (see partition_swap);
    a table made otherwise gets the day's rows deleted and the new ones copied in.
    """
    with engine.connect() as probe:
        ddl, table, added = table_plan(probe, schema, table_name, frame.collect_schema())
        partitioned = any(isinstance(statement, sa.schema.CreateTable) for statement in ddl) or is_partitioned(probe, table.schema, table.name)
        dialect = literal_dialect(probe.dialect)
    statements = [str(statement.compile(dialect=dialect)) for statement in ddl]
    if partitioned:
        swap = PartitionSwap(dialect, table, partition_key, [name for name in frame.collect_schema() if name not in LINEAGE_COLUMNS])
        target = swap.stage
    else:
        frame = _with_lineage(frame, loaded_at, partition_key)
        delete = table.delete().where(table.c["_partition"] == partition_key)
        statements.append(str(delete.compile(dialect=dialect, compile_kwargs={"literal_binds": True})))
        target = table
    # Binary COPY wants each column in exactly the table's type.
    dtypes = {column.name: polars_dtype(column.type, "postgresql") for column in target.columns}
    present = frame.collect_schema()
    frame = frame.cast({name: dtype for name, dtype in dtypes.items() if dtype is not None and name in present})
    keep = [column.name for column in target.columns if column.name in present]
    # Decoding Parquet and encoding COPY run on a read-ahead thread from here on: first while we connect and
    # run the DDL, then while psycopg sends the previous chunk.
    chunks = ReadAhead(
        pg_copy.encoded(
            record_batch for batch in _counted(frame, COPY_CHUNK_ROWS, progress, files) for record_batch in batch.select(keep).to_arrow().to_batches()
        )
    )
    try:
        with pg_copy.connect(engine.url) as conn:
            try:
                with conn.cursor() as cursor:
                    if partitioned:
                        cursor.execute(swap.lock())
                    for statement in statements:
                        cursor.execute(statement)
                    if partitioned:
                        cursor.execute(swap.lookup())
                        found = cursor.fetchall()
                        cursor.execute(swap.create_stage())
                    pg_copy.copy_chunks(cursor, pg_copy.copy_statement(dialect, target, keep, freeze=partitioned), chunks)
                    if partitioned:
                        for statement in swap.finish(found, Lineage(loaded_at, files_pattern(files), partition_key)):
                            cursor.execute(statement)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
    finally:
        chunks.close()
    return table, added
