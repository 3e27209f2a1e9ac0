"""A `sql` source as a row of the Excel job list: a database table, its connection the secret `<source_name>-connection`."""

from typing import Any

from etl_resources.sources.base import Column, WorkbookForm
from etl_resources.sources.sql.model import SqlSource

DATABASE_TYPES = ("postgresql", "mssql", "azure_sql", "oracle", "mysql", "sqlite")
# The seed's words for the model's modes; a test holds them to the model's own choices.
LOAD_TYPES = {"FULL": "snapshot", "INCREMENTAL": "incremental"}
SECRET = "connection"


def entry(row: dict[str, str]) -> dict[str, Any]:
    get = row.get
    table = get("table_name", "")
    fields: dict[str, Any] = {
        "kind": "sql",
        "connection": f"${{{get('source_name', '')}-{SECRET}}}",
        "table": f"{get('schema_name')}.{table}" if get("schema_name") else table,
        "mode": LOAD_TYPES.get((get("load_type") or "FULL").upper(), get("load_type")),
    }
    if get("watermark_column"):
        fields["watermark_column"] = get("watermark_column")
    return fields


def row(source: SqlSource) -> dict[str, str]:
    schema, _, table = source.table.rpartition(".")
    load_type = "INCREMENTAL" if source.mode == "incremental" else "FULL"
    return {"source_type": "database", "table_name": table, "schema_name": schema, "load_type": load_type, "watermark_column": source.watermark_column or ""}


FORM = WorkbookForm(
    source_types=(*DATABASE_TYPES, "database"),
    columns=(
        Column("schema_name", "the table's schema in the source"),
        Column("load_type", "FULL: the whole table every day; INCREMENTAL: the rows whose watermark falls in the day", tuple(LOAD_TYPES)),
        Column("watermark_column", "INCREMENTAL: a timestamp column"),
    ),
    fields={"connection": "source_name", "table": "table_name", "mode": "load_type", "watermark_column": "watermark_column"},
    entry=entry,
    row=row,
    secret=SECRET,
    reference=lambda source: source.connection,
)
