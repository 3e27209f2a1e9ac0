"""The `sql` kind: a table or query in any database SQLAlchemy can reach, a day's window on its watermark when incremental."""

from collections.abc import Iterator

import polars as pl

from etl_resources.sources.base import ExtractRun, SourceKind
from etl_resources.sources.sql.extract import extract
from etl_resources.sources.sql.kind_tag import database_kind
from etl_resources.sources.sql.model import SqlSource
from etl_resources.sources.sql.workbook import FORM


def extract_day(source: SqlSource, run: ExtractRun) -> Iterator[pl.DataFrame]:
    incremental = source.mode == "incremental"
    if incremental:
        start, end = run.window
        run.log.info(f"{source.name} {run.partition_key}: rows with {source.watermark_column} in [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC")
    return extract(source, run.secrets.url(source.connection), run.window if incremental else None)


KIND = SourceKind(
    kind="sql",
    model=SqlSource,
    extract=extract_day,
    ui_kind=lambda source: database_kind(source.connection),
    reads=lambda source: f"{source.table or 'query'} ({source.mode})",
    workbook=FORM,
)
