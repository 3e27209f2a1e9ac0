"""A `google_sheets` source as a row of the Excel job list: a range of a spreadsheet, its key the secret `<source_name>-service-account`."""

from typing import Any

from etl_resources.sources.base import Column, WorkbookForm
from etl_resources.sources.google_sheets.model import GoogleSheetsSource

SECRET = "service-account"


def entry(row: dict[str, str]) -> dict[str, Any]:
    get = row.get
    return {
        "kind": "google_sheets",
        "spreadsheet_id": get("spreadsheet_id", ""),
        "range": get("sheet_range") or get("table_name", ""),
        "service_account": f"${{{get('source_name', '')}-{SECRET}}}",
    }


def row(source: GoogleSheetsSource) -> dict[str, str]:
    return {"source_type": "google_sheets", "table_name": source.target.table, "spreadsheet_id": source.spreadsheet_id, "sheet_range": source.range}


FORM = WorkbookForm(
    source_types=("google_sheets",),
    columns=(
        Column("spreadsheet_id", "Google Sheets: the id in the sheet's address, docs.google.com/spreadsheets/d/<id>/edit"),
        Column("sheet_range", "Google Sheets: the range in A1 notation, its first row the header, e.g. 'Orders 2026'!A1:Z; default table_name"),
    ),
    fields={"spreadsheet_id": "spreadsheet_id", "range": "sheet_range", "service_account": "source_name"},
    entry=entry,
    row=row,
    secret=SECRET,
    reference=lambda source: source.service_account,
)
