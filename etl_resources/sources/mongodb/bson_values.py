"""BSON values as the lake's exact types.

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

from etl_resources.sources.records import MAX_DECIMAL_DIGITS, as_json

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
    return number if precision <= MAX_DECIMAL_DIGITS and scale <= MAX_DECIMAL_DIGITS else str(value)


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
