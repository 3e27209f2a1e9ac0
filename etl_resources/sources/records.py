"""Records (JSON objects, documents, messages) as a polars frame, shared by the kinds whose rows arrive as records.

Each row keeps its original record as JSON in `_record`, so a reject shows what the source sent.
"""

import json
from collections.abc import Callable
from typing import Any, Literal

import polars as pl

RECORD_COLUMN = "_record"
Nested = Literal["json", "flatten"]


def as_json(value: Any, default: Callable[[Any], Any] = str) -> str:
    """JSON text that keeps non-ASCII characters as they are, so a cell reads as the source wrote it."""
    return json.dumps(value, ensure_ascii=False, default=default)


def json_path(body: Any, path: str) -> Any:
    """`a.b.0.c` walks dict keys and list indexes; None where the path does not exist."""
    for part in path.split("."):
        if isinstance(body, dict):
            body = body.get(part)
        elif isinstance(body, list) and part.isdigit() and int(part) < len(body):
            body = body[int(part)]
        else:
            return None
    return body


def flatten(record: dict, prefix: str = "", default: Callable[[Any], Any] = str) -> dict[str, Any]:
    """Nested objects as `parent_child` keys; lists stay whole, as JSON text."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}_", default))
        else:
            flat[name] = as_json(value, default) if isinstance(value, list) else value
    return flat


def record_row(record: Any, nested: Nested, default: Callable[[Any], Any] = str) -> dict[str, Any]:
    """One row: nested values as JSON text (`json`) or `parent_child` columns (`flatten`), the record in `_record`."""
    if not isinstance(record, dict):
        record = {"value": record}
    if nested == "flatten":
        row = flatten(record, default=default)
    else:
        row = {key: as_json(value, default) if isinstance(value, (dict, list)) else value for key, value in record.items()}
    row[RECORD_COLUMN] = as_json(record, default)
    return row


def rows_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows of mixed keys as one frame; a column whose values disagree in type becomes text, never NULLs."""
    if not rows:
        return pl.DataFrame({RECORD_COLUMN: []}, schema={RECORD_COLUMN: pl.String})
    return pl.from_dicts(rows, infer_schema_length=None, strict=False)


def records_frame(records: list[Any], nested: Nested) -> pl.DataFrame:
    return rows_frame([record_row(record, nested) for record in records])
