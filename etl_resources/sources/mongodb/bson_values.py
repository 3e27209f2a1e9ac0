"""BSON values as the lake's exact types, and a day's rows made safe for polars' type inference.

| BSON | value | in JSON text (`nested: json`, `_record`) |
|---|---|---|
| ObjectId | its 24 hex digits | the same |
| Decimal128 | `Decimal` if it fits `decimal(38, s)`, else its text (`NaN`, `Infinity`, `1E+6000`) | its text |
| date | `datetime` in UTC (BSON keeps milliseconds) | `2026-11-01T10:15:30.123000Z` |
| int32, int64 | `int` | the number |
| binary | `bytes`; subtype 4 (UUID) its canonical text | base64 |
| UUID | its canonical text | the same |
| regex | `/pattern/flags` | the same |
| JavaScript code | its text (with scope: `{"$code": …, "$scope": {…}}`) | the same |
| timestamp | `Timestamp(<seconds>, <increment>)` | the same |
| MinKey, MaxKey | `MinKey`, `MaxKey` | the same |
"""

import base64
import datetime as dt
import decimal
import re
import uuid
from typing import Any

from bson import DBRef, Decimal128, ObjectId, Regex
from bson.binary import UUID_SUBTYPE, Binary
from bson.code import Code
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.timestamp import Timestamp

from etl_resources.sources.records import as_json

MAX_DIGITS = 38
# Python's re flags as the letters MongoDB writes after a regex.
REGEX_FLAGS = ((re.IGNORECASE, "i"), (re.LOCALE, "l"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.UNICODE, "u"), (re.VERBOSE, "x"))


class UnmappedValueError(TypeError):
    """A value of a BSON type this mapping does not know; the day fails rather than guess."""


def _decimal(value: Decimal128) -> decimal.Decimal | str:
    number = value.to_decimal()
    if not number.is_finite():
        return str(value)
    _, digits, exponent = number.as_tuple()
    scale = max(0, -exponent)
    precision = max(len(digits), scale) + max(0, exponent)
    return number if precision <= MAX_DIGITS and scale <= MAX_DIGITS else str(value)


def _regex(pattern: str, flags: int | str) -> str:
    letters = flags if isinstance(flags, str) else "".join(letter for flag, letter in REGEX_FLAGS if flags & flag)
    return f"/{pattern}/{letters}"


def plain(value: Any) -> Any:
    """`value` with every BSON type replaced by its exact Python counterpart (table above), documents and arrays walked."""
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, int):
        return int(value)  # bson's Int64 is an int subclass; a plain int is what polars and JSON expect
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Decimal128):
        return _decimal(value)
    if isinstance(value, Binary) and value.subtype == UUID_SUBTYPE:
        return str(value.as_uuid())
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Regex):
        return _regex(value.pattern, value.flags)
    if isinstance(value, re.Pattern):
        return _regex(value.pattern, value.flags & ~re.UNICODE)
    if isinstance(value, Code):
        return str(value) if not value.scope else as_json({"$code": str(value), "$scope": plain(value.scope)}, json_default)
    if isinstance(value, Timestamp):
        return f"Timestamp({value.time}, {value.inc})"
    if isinstance(value, MinKey):
        return "MinKey"
    if isinstance(value, MaxKey):
        return "MaxKey"
    if isinstance(value, DBRef):
        return plain(value.as_doc().to_dict())
    raise UnmappedValueError(f"a value of type {type(value).__name__} has no mapping to a lake type")


def json_default(value: Any) -> Any:
    """How `json.dumps` writes what JSON has no type for, without losing a digit or a microsecond."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _kind(value: Any) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(json_default(value) if isinstance(value, (decimal.Decimal, dt.datetime, bytes)) else value)


def _fits(values: list[Any], kinds: set[str]) -> bool:
    """Whether polars can hold the column's mix of kinds in one type without changing a value."""
    if len(kinds) == 1 and kinds != {"Decimal"}:
        return True
    if kinds <= {"int", "float"}:
        return all(abs(value) <= 2**53 for value in values if isinstance(value, int))
    if kinds <= {"int", "Decimal"}:
        numbers = [decimal.Decimal(value) for value in values]
        scale = max(max(0, -number.as_tuple().exponent) for number in numbers)
        whole = max(len(str(abs(int(number)))) for number in numbers)
        return whole + scale <= MAX_DIGITS
    return False


def exact_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with every column whose values no single type holds exactly (2**53+1 next to 1.5, `true` next to
    1, decimals wider than 38 digits together) made text, value by value; polars would round or coerce them."""
    columns: dict[str, list[Any]] = {}
    for row in rows:
        for key, value in row.items():
            if value is not None:
                columns.setdefault(key, []).append(value)
    textual = {key for key, values in columns.items() if not _fits(values, {_kind(value) for value in values})}
    if not textual:
        return rows
    return [{key: _text(value) if key in textual and value is not None else value for key, value in row.items()} for row in rows]
