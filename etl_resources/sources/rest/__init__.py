"""The `rest` kind: a paginated JSON API, read page by page for the day's window."""

from collections.abc import Iterator

import polars as pl

from etl_resources.sources.base import ExtractRun, SourceKind
from etl_resources.sources.rest.extract import extract_rest
from etl_resources.sources.rest.model import RestSource
from etl_resources.sources.rest.workbook import FORM


def extract_day(source: RestSource, run: ExtractRun) -> Iterator[pl.DataFrame]:
    return extract_rest(source, run.secrets.store(), run.window, run.log)


KIND = SourceKind(
    kind="rest",
    model=RestSource,
    extract=extract_day,
    ui_kind=lambda source: "api",
    reads=lambda source: f"GET {source.base_url.rstrip('/')}/{source.path.lstrip('/')}",
    workbook=FORM,
)
