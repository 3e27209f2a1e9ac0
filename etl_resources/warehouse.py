"""The warehouse resource and the partition load: delete the partition's rows and insert the new ones, in one transaction."""

import datetime as dt
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import sqlalchemy as sa
from pydantic import PrivateAttr

from etl_resources.progress import Progress
from etl_resources.secrets import SecretResolver
from etl_resources.warehouse_schema import ensure_table

DEFAULT_WAREHOUSE_URL = "sqlite:///.etl/warehouse.db"
INSERT_CHUNK_ROWS = 10_000
COPY_CHUNK_ROWS = 100_000


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


def _copy_postgres(conn: sa.Connection, table: sa.Table, batch: pl.DataFrame) -> None:
    """COPY the batch as CSV through the load's own connection, so it stays inside the partition's transaction.

    polars formats the CSV and the server parses it: no Python per row. Unquoted \\N is NULL, so NULL, the
    empty string and a literal backslash-N stay three different values.
    """
    buffer = io.BytesIO()
    batch.write_csv(buffer, include_header=False, null_value=r"\N", quote_style="non_numeric")
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(name) for name in batch.columns)
    statement = f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN (FORMAT csv, NULL '\\N')"
    with conn.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(buffer.getbuffer())


def _insert(conn: sa.Connection, table: sa.Table, batch: pl.DataFrame) -> None:
    if conn.dialect.name == "postgresql" and pl.Binary not in batch.schema.dtypes():
        _copy_postgres(conn, table, batch)
    else:
        conn.execute(table.insert(), batch.to_dicts())


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
    frame_schema = frame.collect_schema()
    progress = Progress(log, f"{table_name} {partition_key}")
    files: set[str] = set()
    with engine.begin() as conn:
        table, added = ensure_table(conn, schema, table_name, frame_schema)
        conn.execute(table.delete().where(table.c["_partition"] == partition_key))
        chunk = COPY_CHUNK_ROWS if conn.dialect.name == "postgresql" else INSERT_CHUNK_ROWS
        for batch in frame.collect_batches(chunk_size=chunk):
            if batch.height == 0:
                continue
            files.update(batch.get_column("_source_file").unique().to_list())
            _insert(conn, table, batch)
            progress.add(batch.height)
    if log:
        log.info(f"{table.fullname} {partition_key}: loaded {progress.summary()}")
    return PartitionLoad(partition_key=partition_key, rows=progress.rows, files=len(files), table=table.fullname, added_columns=added)
