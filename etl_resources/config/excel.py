"""Sources as rows of an Excel workbook, the seeds' job list: one row a table (or an API endpoint) to ingest.

The workbook's sheet `sources` has one column per field below. Rows map onto the same model as the YAML
and go through the same validation; an error names the sheet, the row and the column. Secrets stay out of
the workbook: a database row's connection is the secret `<source_name>-connection` (a SQLAlchemy URL), an
API row's key the secret `<source_name>-api-key`, both looked up like any `${NAME}`.
"""

import datetime as dt
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from etl_resources.config.model import Target

SHEET = "sources"
DATABASE_TYPES = ("postgresql", "mssql", "azure_sql", "oracle", "mysql", "sqlite")
SOURCE_TYPES = (*DATABASE_TYPES, "database", "api")
# The seed's words for the model's modes; a test holds them to the model's own choices.
LOAD_TYPES = {"FULL": "snapshot", "INCREMENTAL": "incremental"}
WRITE_MODES = get_args(Target.model_fields["write_mode"].annotation)
AUTH_TYPES = ("none", "api_key", "bearer")


@dataclass(frozen=True)
class Column:
    name: str
    meaning: str
    allowed: tuple[str, ...] = ()
    required: bool = False


COLUMNS = (
    Column("source_name", "the connection's name; its secret is <source_name>-connection (databases) or <source_name>-api-key (APIs)", required=True),
    Column("source_type", "api, or a database (its type is for people: the URL in the connection secret picks the driver)", SOURCE_TYPES, required=True),
    Column("table_name", "the table to read (databases), or the dataset's name (APIs)", required=True),
    Column("schema_name", "the table's schema in the source"),
    Column("api_endpoint", "APIs: the path under base_url"),
    Column("base_url", "APIs: https://…"),
    Column("auth", "APIs: how the key is sent (X-API-KEY header, or Authorization: Bearer)", AUTH_TYPES),
    Column("load_type", "FULL: the whole table every day; INCREMENTAL: the rows whose watermark falls in the day", tuple(LOAD_TYPES)),
    Column("watermark_column", "INCREMENTAL: a timestamp column"),
    Column("start_date", "the first day to load, YYYY-MM-DD", required=True),
    Column("target_schema", "the warehouse schema"),
    Column("target_table", "the warehouse table; default table_name"),
    Column("write_mode", "how a day is written", WRITE_MODES),
    Column("merge_keys", "merge: the key columns, comma-separated"),
    Column("schedule", "a cron in UTC; default 15 0 * * *"),
    Column("enabled", "Y to run, N to skip", ("Y", "N")),
    Column("name", "the asset's name; default <source_name>_<table_name>"),
)
BY_NAME = {column.name: column for column in COLUMNS}
# Where each model field comes from, for pointing a validation error at its cell.
FIELD_COLUMNS = {
    "name": "name",
    "connection": "source_name",
    "table": "table_name",
    "mode": "load_type",
    "watermark_column": "watermark_column",
    "start_date": "start_date",
    "target": "target_table",
    "target.table": "target_table",
    "target.schema": "target_schema",
    "target.write_mode": "write_mode",
    "target.keys": "merge_keys",
    "schedule": "schedule",
    "enabled": "enabled",
    "base_url": "base_url",
    "path": "api_endpoint",
    "auth": "auth",
    "auth.value": "source_name",
    "kind": "source_type",
}

# The other way round, for the columns whose values are checked before the model sees them.
COLUMN_FIELDS = {"source_type": ("kind",), "load_type": ("mode",), "auth": ("auth",), "write_mode": ("target", "write_mode"), "enabled": ("enabled",)}


class WorkbookError(ValueError):
    pass


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_rows(path: Path) -> list[dict[str, str]]:
    """The sheet's rows as {column: text}, header checked; row numbers are list index + 2."""
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError) as err:
        raise WorkbookError(_not_a_workbook(path, err)) from None
    if SHEET not in workbook.sheetnames:
        raise WorkbookError(
            f"workbook {path.resolve()} has no sheet '{SHEET}' (sheets: {', '.join(workbook.sheetnames)}; fix: name the job list's sheet '{SHEET}')"
        )
    rows = list(workbook[SHEET].iter_rows(values_only=True))
    if not rows:
        raise WorkbookError(f"workbook {path.resolve()}, sheet '{SHEET}' is empty (fix: start from `etl-config template`)")
    header = [cell_text(value) for value in rows[0]]
    unknown = [f"column {i + 1} '{name}'" for i, name in enumerate(header) if name and name not in BY_NAME]
    missing = [column.name for column in COLUMNS if column.required and column.name not in header]
    if unknown or missing:
        problems = ([f"unknown {', '.join(unknown)}"] if unknown else []) + ([f"missing required column(s) {', '.join(missing)}"] if missing else [])
        raise WorkbookError(f"workbook {path.resolve()}, sheet '{SHEET}', row 1: {'; '.join(problems)} (fix: the columns are {', '.join(BY_NAME)})")
    return [{name: cell_text(value) for name, value in zip(header, row, strict=False) if name} for row in rows[1:] if any(cell_text(value) for value in row)]


def _not_a_workbook(path: Path, err: Exception) -> str:
    """Why a .xlsx file could not be opened, in the words of what it holds (a CSV renamed, an old .xls)."""
    if isinstance(err, OSError):
        return f"workbook {path.resolve()} cannot be read: {err.strerror} (fix: check the file's permissions)"
    with path.open("rb") as file:
        head = file.read(4096)
    fix = "open it in Excel and save it as 'Excel Workbook (.xlsx)', or start from `etl-config template`"
    if not head:
        return f"workbook {path.resolve()} is empty, 0 bytes (fix: {fix})"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return f"workbook {path.resolve()} is an old Excel .xls (or an encrypted workbook), not .xlsx (fix: {fix})"
    if b"\x00" not in head:
        return f"workbook {path.resolve()} is not an Excel workbook: it holds text, such as CSV or YAML (fix: {fix}; a sources YAML needs the extension .yaml)"
    return f"workbook {path.resolve()} is not an Excel .xlsx workbook ({err.args[0] if err.args else type(err).__name__}) (fix: {fix})"


def row_problems(row: dict[str, str]) -> list[tuple[str, str]]:
    """(column, problem) for values outside a column's allowed set."""
    problems = []
    for name, value in row.items():
        allowed = BY_NAME[name].allowed
        if value and allowed and value not in allowed and value.upper() not in allowed:
            problems.append((name, f"{value!r} is not one of {', '.join(allowed)}"))
    return problems


def source_of(row: dict[str, str]) -> dict[str, Any]:
    """The raw source entry (as the YAML would have it) for one row."""
    get = row.get
    source_name, table = get("source_name", ""), get("table_name", "")
    entry: dict[str, Any] = {"name": get("name") or f"{source_name}_{table}".lower(), "start_date": get("start_date", "")}
    if get("source_type") == "api":
        entry |= {"kind": "rest", "base_url": get("base_url", ""), "path": get("api_endpoint") or f"/{table}"}
        auth = get("auth") or "none"
        if auth == "api_key":
            entry["auth"] = {"type": "api_key", "value": f"${{{source_name}-api-key}}"}
        elif auth == "bearer":
            entry["auth"] = {"type": "bearer", "token": f"${{{source_name}-api-key}}"}
    else:
        entry |= {
            "kind": "sql",
            "connection": f"${{{source_name}-connection}}",
            "table": f"{get('schema_name')}.{table}" if get("schema_name") else table,
            "mode": LOAD_TYPES.get((get("load_type") or "FULL").upper(), get("load_type")),
        }
        if get("watermark_column"):
            entry["watermark_column"] = get("watermark_column")
    target: dict[str, Any] = {"table": get("target_table") or table}
    if get("target_schema"):
        target["schema"] = get("target_schema")
    if get("write_mode"):
        target["write_mode"] = get("write_mode")
    if get("merge_keys"):
        target["keys"] = [key.strip() for key in get("merge_keys", "").split(",") if key.strip()]
    entry["target"] = target
    if get("schedule"):
        entry["schedule"] = get("schedule")
    if get("enabled"):
        entry["enabled"] = get("enabled", "").upper() != "N"
    return entry


def cell_of(path: tuple[str | int, ...]) -> str:
    """`sheet 'sources', row R, column 'C'` for a model path like ("sources", 2, "target", "table")."""
    if len(path) < 2 or not isinstance(path[1], int):
        return f"sheet '{SHEET}'"
    fields = [str(part) for part in path[2:] if not isinstance(part, int)]
    column = next((FIELD_COLUMNS[".".join(fields[:end])] for end in range(len(fields), 0, -1) if ".".join(fields[:end]) in FIELD_COLUMNS), None)
    return f"sheet '{SHEET}', row {path[1] + 2}" + (f", column '{column}'" if column else "")


def write_workbook(path: Path, rows: list[dict[str, str]]) -> None:
    """A job list with a header from COLUMNS, drop-downs for the columns with a fixed set of values, and a
    second sheet that explains every column: the template is this with no rows."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = SHEET
    sheet.append([column.name for column in COLUMNS])
    for row in rows:
        sheet.append([row.get(column.name, "") for column in COLUMNS])
    for index, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = max(14, len(column.name) + 2)
        if column.allowed:
            validation = DataValidation(type="list", formula1=f'"{",".join(column.allowed)}"', allow_blank=not column.required)
            validation.add(f"{letter}2:{letter}1000")
            sheet.add_data_validation(validation)
    sheet.freeze_panes = "A2"
    guide = workbook.create_sheet("columns")
    guide.append(["column", "required", "allowed values", "meaning"])
    for column in COLUMNS:
        guide.append([column.name, "yes" if column.required else "", ", ".join(column.allowed), column.meaning])
    workbook.save(path)


REPRESENTABLE = {
    "sql": {"name", "kind", "connection", "table", "mode", "watermark_column", "start_date", "target", "schedule", "enabled"},
    "rest": {"name", "kind", "base_url", "path", "auth", "start_date", "target", "schedule", "enabled"},
}


def row_of(source) -> dict[str, str]:
    """One source as a workbook row; a source that uses what the columns cannot say is refused, naming the fields."""
    extra = sorted(source.model_fields_set - REPRESENTABLE.get(source.kind, set()))
    if source.kind not in REPRESENTABLE or extra:
        what = f"fields {', '.join(extra)}" if extra else f"kind {source.kind}"
        raise WorkbookError(f"source '{source.name}': {what} have no column in the workbook (fix: keep this source in YAML)")
    secret = "api-key" if source.kind == "rest" else "connection"
    reference = (
        source.connection
        if source.kind == "sql"
        else (source.auth.value if source.auth and source.auth.type == "api_key" else getattr(source.auth, "token", None))
    )
    source_name = reference[2 : -len(f"-{secret}}}")] if reference and reference.startswith("${") and reference.endswith(f"-{secret}}}") else None
    if reference and source_name is None:
        raise WorkbookError(
            f"source '{source.name}': a workbook takes its secret as ${{<source_name>-{secret}}}, not {reference!r} (fix: store it under that name)"
        )
    source_name = source_name or source.name
    row = {"source_name": source_name, "name": source.name, "start_date": source.start_date.isoformat()}
    if source.kind == "sql":
        schema, _, table = source.table.rpartition(".")
        row |= {"source_type": "database", "table_name": table, "schema_name": schema, "load_type": "INCREMENTAL" if source.mode == "incremental" else "FULL"}
        row["watermark_column"] = source.watermark_column or ""
    else:
        row |= {"source_type": "api", "table_name": source.target.table, "base_url": source.base_url, "api_endpoint": source.path}
        row["auth"] = source.auth.type if source.auth else "none"
    row |= {"target_table": source.target.table, "target_schema": source.target.schema_ or "", "write_mode": source.target.write_mode}
    row |= {"merge_keys": ", ".join(source.target.keys), "schedule": source.schedule or "", "enabled": "Y" if source.enabled else "N"}
    return row
