"""Polars types for database columns, sources' and the warehouse's alike (the warehouse's own types: warehouse/types.py)."""

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# Numbers with more digits than this do not fit polars' (and Parquet's common) 128-bit decimal.
MAX_DECIMAL_PRECISION = 38


MYSQL_INTEGERS = {
    "TINYINT": (pl.Int8, pl.UInt8),
    "SMALLINT": (pl.Int16, pl.UInt16),
    "MEDIUMINT": (pl.Int32, pl.UInt32),
    "INTEGER": (pl.Int32, pl.UInt32),
    "INT": (pl.Int32, pl.UInt32),
    "BIGINT": (pl.Int64, pl.UInt64),
}


def polars_dtype(column_type: sa.types.TypeEngine, dialect: str) -> pl.DataType | None:
    """The polars type for a reflected column, or None to let polars infer it from the values.

    Decided by the declaration alone, so every day of a source has one schema: a numeric without precision, or
    with more than 38 digits, is exact text, never a float."""
    if dialect == "sqlite" and isinstance(column_type, sa.Integer):
        return pl.Int64()  # SQLite INTEGER holds 64-bit values whatever the declared name
    if dialect == "sqlite" and isinstance(column_type, sa.Float):
        return pl.Float64()  # SQLite REAL is 8 bytes whatever the declared name
    if dialect in ("mysql", "mariadb"):
        dtype = _mysql_dtype(column_type)
        if dtype is not None:
            return dtype
    if isinstance(column_type, sa.Boolean):
        return pl.Boolean()
    if isinstance(column_type, sa.SmallInteger):
        return pl.Int16()
    if isinstance(column_type, sa.BigInteger):
        return pl.Int64()
    if isinstance(column_type, sa.Integer):
        return pl.Int32() if type(column_type).__name__.upper() in {"INTEGER", "INT"} else pl.Int64()
    if isinstance(column_type, sa.REAL) or (isinstance(column_type, sa.Float) and (column_type.precision or 53) <= 24):
        return pl.Float32()
    if isinstance(column_type, sa.Float):
        return pl.Float64()
    if isinstance(column_type, sa.Numeric):
        precision, scale = column_type.precision, column_type.scale
        if precision is not None and precision <= MAX_DECIMAL_PRECISION:
            return pl.Decimal(precision, scale or 0)
        return pl.String()
    if isinstance(column_type, sa.DateTime):
        return pl.Datetime("us", "UTC") if column_type.timezone else pl.Datetime("us")
    if isinstance(column_type, sa.Date):
        return pl.Date()
    if isinstance(column_type, sa.Time):
        return pl.Time()
    if isinstance(column_type, (sa.String, sa.Uuid, sa.JSON)):
        return pl.String()
    if isinstance(column_type, sa.LargeBinary):
        return pl.Binary()
    return None


def _mysql_dtype(column_type: sa.types.TypeEngine) -> pl.DataType | None:
    """MySQL/MariaDB integers by width and sign (BIGINT UNSIGNED needs UInt64); BIT(n) as an unsigned number; TIME,
    which spans -838:59:59 to 838:59:59 and so is a duration, not a time of day, as its own text."""
    if isinstance(column_type, mysql.BIT):
        return pl.UInt64()
    if isinstance(column_type, sa.Integer) and not isinstance(column_type, sa.Boolean):
        signed, unsigned = MYSQL_INTEGERS.get(type(column_type).__name__.upper(), (pl.Int64, pl.UInt64))
        return unsigned() if getattr(column_type, "unsigned", False) else signed()
    if isinstance(column_type, sa.Time):
        return pl.String()
    return None


MYSQL_NEWDECIMAL, MYSQL_TIME = 246, 11


def mysql_result_dtypes(description) -> dict[str, pl.DataType]:
    """A MySQL query's decimal and TIME columns typed from the result's metadata, not inferred from each batch's
    values (which would give days of one source different decimal types). The metadata gives a decimal's display
    length (digits, point, sign) but not its sign, so the precision keeps one digit of headroom."""
    dtypes: dict[str, pl.DataType] = {}
    for name, type_code, _, length, _, scale, _ in description or ():
        if type_code == MYSQL_NEWDECIMAL:
            precision = length - (1 if scale else 0)
            dtypes[name] = pl.Decimal(precision, scale) if precision <= MAX_DECIMAL_PRECISION else pl.String()
        elif type_code == MYSQL_TIME:
            dtypes[name] = pl.String()
    return dtypes
