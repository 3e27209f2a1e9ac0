"""Records (JSON objects, documents, messages) as a polars frame, shared by the kinds whose rows arrive as records.

Each row keeps its original record as JSON in `_record`, so a reject shows what the source sent.
"""

import decimal
import json
from collections.abc import Callable
from typing import Any, Literal

import polars as pl

RECORD_COLUMN = "_record"
Nested = Literal["json", "flatten"]
# The widest decimal polars holds exactly.
MAX_DECIMAL_DIGITS = 38
INT64 = (-(2**63), 2**63 - 1)


def as_json(value: Any, default: Callable[[Any], Any] = str) -> str:
    """JSON text that keeps non-ASCII characters as they are, so a cell reads as the source wrote it."""
    return json.dumps(value, ensure_ascii=False, default=default)


def parse_json(text: str | bytes) -> Any:
    """JSON whose numbers arrive as written: a number a double cannot hold exactly (more than 17 significant
    digits) is a Decimal, not a rounded float."""
    return json.loads(text, parse_float=_number)


def _number(literal: str) -> float | decimal.Decimal:
    value = float(literal)
    return value if decimal.Decimal(repr(value)) == decimal.Decimal(literal) else decimal.Decimal(literal)


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


def rows_frame(rows: list[dict[str, Any]], default: Callable[[Any], Any] = str) -> pl.DataFrame:
    """Rows of mixed keys as one frame; a column whose values no one type holds exactly becomes text, never NULLs."""
    if not rows:
        return pl.DataFrame({RECORD_COLUMN: []}, schema={RECORD_COLUMN: pl.String})
    return pl.from_dicts(exact_rows(rows, default), infer_schema_length=None, strict=False)


def exact_rows(rows: list[dict[str, Any]], default: Callable[[Any], Any] = str) -> list[dict[str, Any]]:
    """The rows with every column whose values no single type holds exactly (2**53+1 next to 1.5, `true` next to
    1, `1.0` next to text, an int past Int64, decimals wider than 38 digits together) made text, value by value, as JSON spells
    them; polars would round, coerce or respell them."""
    columns: dict[str, list[Any]] = {}
    for row in rows:
        for key, value in row.items():
            if value is not None:
                columns.setdefault(key, []).append(value)
    textual = {key for key, values in columns.items() if not _fits(values, {_kind(value) for value in values})}
    if not textual:
        return rows
    return [{key: _text(value, default) if key in textual and value is not None else value for key, value in row.items()} for row in rows]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    # Past Int64 polars makes an int NULL (or Int128, which no warehouse loads): such a column is text.
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        return "bigint"
    return type(value).__name__


def _text(value: Any, default: Callable[[Any], Any]) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    spelled = default(value)
    return spelled if isinstance(spelled, str) else str(spelled)


def _fits(values: list[Any], kinds: set[str]) -> bool:
    """Whether polars holds the column's mix of kinds in one type without changing a value."""
    if len(kinds) == 1 and kinds.isdisjoint({"Decimal", "bigint"}):
        return True
    if kinds <= {"int", "float"}:
        return all(abs(value) <= 2**53 for value in values if isinstance(value, int))
    if kinds <= {"int", "Decimal"}:
        numbers = [decimal.Decimal(value) for value in values]
        scale = max(max(0, -number.as_tuple().exponent) for number in numbers)
        whole = max(len(str(abs(int(number)))) for number in numbers)
        return whole + scale <= MAX_DECIMAL_DIGITS
    return False


def records_frame(records: list[Any], nested: Nested) -> pl.DataFrame:
    return rows_frame([record_row(record, nested) for record in records])
