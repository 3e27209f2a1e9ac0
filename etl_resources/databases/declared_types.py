"""The lake type a column's SQLAlchemy declaration stands for, whatever the database: the rule each dialect's
own quirks fall back to."""

import polars as pl
import sqlalchemy as sa

# Numbers with more digits than this do not fit polars' (and Parquet's common) 128-bit decimal.
MAX_DECIMAL_PRECISION = 38


def declared_dtype(column_type: sa.types.TypeEngine) -> pl.DataType | None:
    """The polars type for a declared column, or None to let polars infer it from the values.

    Decided by the declaration alone, so every day of a source has one schema: a numeric without precision, or
    with more than 38 digits, is exact text, never a float."""
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
        return decimal_dtype(column_type.precision, column_type.scale)
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


def decimal_dtype(precision: int | None, scale: int | None) -> pl.DataType:
    """Decimal(p,s) up to 38 digits; a numeric without precision, or wider, is exact text."""
    if precision is not None and precision <= MAX_DECIMAL_PRECISION:
        return pl.Decimal(precision, scale or 0)
    return pl.String()
