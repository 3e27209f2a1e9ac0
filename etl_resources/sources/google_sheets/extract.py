"""Extract a Google Sheets range: the whole range on every run (a snapshot), as frames of typed columns."""

from collections.abc import Iterator

import polars as pl

from etl_resources.sources.base import ExtractRun
from etl_resources.sources.google_sheets.auth import GoogleSheetsError, load_key
from etl_resources.sources.google_sheets.client import SheetsClient
from etl_resources.sources.google_sheets.model import GoogleSheetsSource
from etl_resources.sources.google_sheets.table import SheetTableError, table


def extract_day(source: GoogleSheetsSource, run: ExtractRun) -> Iterator[pl.DataFrame]:
    """The range as read now, whatever the day: a sheet keeps no history to read a past day from."""
    account = load_key(source, run.secrets.store())
    with SheetsClient(source, account, run.log) as client:
        body = client.values()
    try:
        rows = table(body.get("values", []), body.get("range", source.range), source.header_row)
    except SheetTableError as err:
        raise GoogleSheetsError(
            f"source '{source.name}', field 'header_row': {err} (fix: give every column one name of its own in the sheet, "
            "or point `range` and `header_row` at the header)"
        ) from None
    run.log.info(f"source '{source.name}' {run.partition_key}: {len(rows.rows)} row(s), {len(rows.names)} column(s) from {body.get('range', source.range)}")
    yield from rows.frames(source.batch_size)
