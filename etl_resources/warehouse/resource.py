"""The warehouse resource and the partition load: replace a partition's rows with the new ones, in one transaction."""

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dagster as dg
import polars as pl
import sqlalchemy as sa
from pydantic import PrivateAttr

from etl_resources.databases.engines import create_engine
from etl_resources.progress import Progress
from etl_resources.secrets import SecretResolver
from etl_resources.warehouse import names as warehouse_names
from etl_resources.warehouse.audit_queue import DEFAULT_AUDIT_QUEUE
from etl_resources.warehouse.dialects import LoadRequest, for_dialect
from etl_resources.warehouse.schema import LINEAGE_COLUMNS
from etl_resources.warehouse.write_modes import ROW_NUMBER, WriteModeError

DEFAULT_WAREHOUSE_URL = "sqlite:///.etl/warehouse.db"
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
            for_dialect(url.get_backend_name()).prepare_url(url)
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
    """Load one day by the target's write mode (see write_modes.py), the way its warehouse dialect loads; all or nothing, like the replace."""
    _check_own_columns(engine, table_name, frame)
    frame = _nested_as_json(frame)
    missing = [key for key in keys if key not in frame.collect_schema().names()]
    if missing:
        raise WriteModeError(f"{table_name} {partition_key}: merge keys {missing} are not columns of the source (fix: `target.keys` must name source columns)")
    progress = Progress(log, f"{table_name} {partition_key}")
    files: set[str] = set()
    request = LoadRequest(schema, table_name, partition_key, frame, write_mode, tuple(keys), dt.datetime.now(dt.UTC), _recounted(progress, files), files, log)
    table, added = for_dialect(engine.dialect.name).load_day(engine, request)
    if log:
        log.info(f"{table.fullname} {partition_key}: loaded ({write_mode}) {progress.summary()}")
    return PartitionLoad(partition_key=partition_key, rows=progress.rows, files=len(files), table=table.fullname, added_columns=added)


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
