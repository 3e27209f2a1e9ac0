"""MySQL and MariaDB columns: the lake type of a reflected column, how one is selected so the driver's value
stays as the source holds it, and a query's result columns typed from their metadata."""

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from etl_resources.databases.declared_types import decimal_dtype

MYSQL_INTEGERS = {
    "TINYINT": (pl.Int8, pl.UInt8),
    "SMALLINT": (pl.Int16, pl.UInt16),
    "MEDIUMINT": (pl.Int32, pl.UInt32),
    "INTEGER": (pl.Int32, pl.UInt32),
    "INT": (pl.Int32, pl.UInt32),
    "BIGINT": (pl.Int64, pl.UInt64),
}
MYSQL_NEWDECIMAL, MYSQL_TIME = 246, 11


def mysql_dtype(column_type: sa.types.TypeEngine) -> pl.DataType | None:
    """Integers by width and sign (BIGINT UNSIGNED needs UInt64); BIT(n) as an unsigned number; TIME, which spans
    -838:59:59 to 838:59:59 and so is a duration, not a time of day, as its own text."""
    if isinstance(column_type, mysql.BIT):
        return pl.UInt64()
    if isinstance(column_type, sa.Integer) and not isinstance(column_type, sa.Boolean):
        signed, unsigned = MYSQL_INTEGERS.get(type(column_type).__name__.upper(), (pl.Int64, pl.UInt64))
        return unsigned() if getattr(column_type, "unsigned", False) else signed()
    if isinstance(column_type, sa.Time):
        return pl.String()
    return None


def mysql_read_as(column: sa.Column) -> sa.ColumnElement | None:
    """SET as the text the source holds (`a,b`), not a Python set; TIME as the driver's duration, not a time of
    day, which would wrap -838:59:59 to 01:00:01."""
    if isinstance(column.type, mysql.SET):
        return sa.type_coerce(column, sa.Text()).label(column.name)
    if isinstance(column.type, mysql.TIME):
        return sa.type_coerce(column, sa.types.NullType()).label(column.name)
    return None


def mysql_result_dtypes(columns: list[str], description) -> dict[str, pl.DataType]:
    """A query's decimal and TIME columns typed from the result's metadata, not inferred from each batch's values
    (which would give days of one source different decimal types). The metadata gives a decimal's display length
    (digits, point, sign) but not its sign, so the precision keeps one digit of headroom."""
    dtypes: dict[str, pl.DataType] = {}
    for name, (_, type_code, _, length, _, scale, _) in zip(columns, description or (), strict=False):
        if type_code == MYSQL_NEWDECIMAL:
            dtypes[name] = decimal_dtype(length - (1 if scale else 0), scale)
        elif type_code == MYSQL_TIME:
            dtypes[name] = pl.String()
    return dtypes
