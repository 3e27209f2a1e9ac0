"""The `google_sheets` kind: a range of a spreadsheet through the Sheets API v4, its header row as columns."""

from etl_resources.sources.base import SourceKind
from etl_resources.sources.google_sheets.extract import extract_day
from etl_resources.sources.google_sheets.model import GoogleSheetsSource
from etl_resources.sources.google_sheets.workbook import FORM

KIND = SourceKind(
    kind="google_sheets",
    model=GoogleSheetsSource,
    extract=extract_day,
    ui_kind=lambda source: "googlesheets",
    reads=lambda source: f"range {source.range} of spreadsheet {source.spreadsheet_id}",
    workbook=FORM,
)
