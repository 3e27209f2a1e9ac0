"""Sources as rows of an Excel workbook, the seeds' job list: one row a table (or an API endpoint) to ingest.

The workbook's sheet `sources` has the shared columns below and those of each kind's workbook form (a kind
without one has no rows here). Rows map onto the same model as the YAML and go through the same validation;
an error names the sheet, the row and the column. Secrets stay out of the workbook: a row's secret is
`<source_name>-<its form's secret>` (a database's connection, an API's key), looked up like any `${NAME}`.
"""

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any, get_args

from etl_resources.config.model import Target
from etl_resources.sources import registry
from etl_resources.sources.base import Column, WorkbookForm

SHEET = "sources"
WRITE_MODES = get_args(Target.model_fields["write_mode"].annotation)

# A kind's own columns go between these two, in the order the kinds are registered.
HEAD = (
    Column("source_name", "the connection's name; its secret is <source_name>-connection (databases) or <source_name>-api-key (APIs)", required=True),
    Column("source_type", "api, or a database (its type is for people: the URL in the connection secret picks the driver)", required=True),
    Column("table_name", "the table to read (databases), or the dataset's name (APIs)", required=True),
)
TAIL = (
    Column("start_date", "the first day to load, YYYY-MM-DD", required=True),
    Column("target_schema", "the warehouse schema"),
    Column("target_table", "the warehouse table; default table_name"),
    Column("write_mode", "how a day is written", WRITE_MODES),
    Column("merge_keys", "merge: the key columns, comma-separated"),
    Column("schedule", "a cron in UTC; default 15 0 * * *"),
    Column("enabled", "Y to run, N to skip", ("Y", "N")),
    Column("name", "the asset's name; default <source_name>_<table_name>"),
)
# Where each shared model field comes from, for pointing a validation error at its cell; a kind's form adds its own.
SHARED_FIELDS = {
    "name": "name",
    "start_date": "start_date",
    "target": "target_table",
    "target.table": "target_table",
    "target.schema": "target_schema",
    "target.write_mode": "write_mode",
    "target.keys": "merge_keys",
    "schedule": "schedule",
    "enabled": "enabled",
    "kind": "source_type",
}


def forms() -> tuple[WorkbookForm, ...]:
    return tuple(kind.workbook for kind in registry.kinds() if kind.workbook)


def columns() -> tuple[Column, ...]:
    source_types = tuple(value for form in forms() for value in form.source_types)
    head = (HEAD[0], Column(HEAD[1].name, HEAD[1].meaning, source_types, HEAD[1].required), *HEAD[2:])
    return (*head, *(column for form in forms() for column in form.columns), *TAIL)


def by_name() -> dict[str, Column]:
    return {column.name: column for column in columns()}


def field_columns() -> dict[str, str]:
    return SHARED_FIELDS | {field: column for form in forms() for field, column in form.fields.items()}


def column_fields() -> dict[str, tuple[str, ...]]:
    """The other way round, for the columns whose values are checked before the model sees them."""
    allowed = {column.name for column in columns() if column.allowed}
    return {column: tuple(field.split(".")) for field, column in field_columns().items() if column in allowed}


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
    known = by_name()
    unknown = [f"column {i + 1} '{name}'" for i, name in enumerate(header) if name and name not in known]
    missing = [column.name for column in known.values() if column.required and column.name not in header]
    if unknown or missing:
        problems = ([f"unknown {', '.join(unknown)}"] if unknown else []) + ([f"missing required column(s) {', '.join(missing)}"] if missing else [])
        raise WorkbookError(f"workbook {path.resolve()}, sheet '{SHEET}', row 1: {'; '.join(problems)} (fix: the columns are {', '.join(known)})")
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
    known = by_name()
    for name, value in row.items():
        allowed = known[name].allowed
        if value and allowed and value not in allowed and value.upper() not in allowed:
            problems.append((name, f"{value!r} is not one of {', '.join(allowed)}"))
    return problems


def _form_of(source_type: str) -> WorkbookForm:
    """The form whose `source_type` this is; a value no kind has is read as the first kind's, so the row's other
    cells are still checked (row_problems names the value itself)."""
    return next((form for form in forms() if source_type in form.source_types), forms()[0])


def source_of(row: dict[str, str]) -> dict[str, Any]:
    """The raw source entry (as the YAML would have it) for one row."""
    get = row.get
    source_name, table = get("source_name", ""), get("table_name", "")
    entry: dict[str, Any] = {"name": get("name") or f"{source_name}_{table}".lower(), "start_date": get("start_date", "")}
    entry |= _form_of(get("source_type", "")).entry(row)
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
    known = field_columns()
    column = next((known[".".join(fields[:end])] for end in range(len(fields), 0, -1) if ".".join(fields[:end]) in known), None)
    return f"sheet '{SHEET}', row {path[1] + 2}" + (f", column '{column}'" if column else "")


def write_workbook(path: Path, rows: list[dict[str, str]]) -> None:
    """A job list with a header from columns(), drop-downs for the columns with a fixed set of values, and a
    second sheet that explains every column: the template is this with no rows."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = SHEET
    listed = columns()
    sheet.append([column.name for column in listed])
    for row in rows:
        sheet.append([row.get(column.name, "") for column in listed])
    for index, column in enumerate(listed, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = max(14, len(column.name) + 2)
        if column.allowed:
            validation = DataValidation(type="list", formula1=f'"{",".join(column.allowed)}"', allow_blank=not column.required)
            validation.add(f"{letter}2:{letter}1000")
            sheet.add_data_validation(validation)
    sheet.freeze_panes = "A2"
    guide = workbook.create_sheet("columns")
    guide.append(["column", "required", "allowed values", "meaning"])
    for column in listed:
        guide.append([column.name, "yes" if column.required else "", ", ".join(column.allowed), column.meaning])
    workbook.save(path)


def row_of(source) -> dict[str, str]:
    """One source as a workbook row; a source that uses what the columns cannot say is refused, naming the fields."""
    form = registry.kind_of(source.kind).workbook
    sayable = {field.split(".")[0] for field in (*SHARED_FIELDS, *(form.fields if form else ()))}
    extra = sorted(source.model_fields_set - sayable)
    if form is None or extra:
        what = f"fields {', '.join(extra)}" if form else f"kind {source.kind}"
        raise WorkbookError(f"source '{source.name}': {what} have no column in the workbook (fix: keep this source in YAML)")
    reference, secret = form.reference(source), form.secret
    source_name = reference[2 : -len(f"-{secret}}}")] if reference and reference.startswith("${") and reference.endswith(f"-{secret}}}") else None
    if reference and source_name is None:
        raise WorkbookError(
            f"source '{source.name}': a workbook takes its secret as ${{<source_name>-{secret}}}, not {reference!r} (fix: store it under that name)"
        )
    row = {"source_name": source_name or source.name, "name": source.name, "start_date": source.start_date.isoformat()} | form.row(source)
    row |= {"target_table": source.target.table, "target_schema": source.target.schema_ or "", "write_mode": source.target.write_mode}
    row |= {"merge_keys": ", ".join(source.target.keys), "schedule": source.schedule or "", "enabled": "Y" if source.enabled else "N"}
    return row
