"""Types between polars (Parquet) and SQLAlchemy (the databases), both ways, in one place."""

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import mssql


def sql_type(dtype: pl.DataType) -> sa.types.TypeEngine:
    """One mapping for every dialect, with T-SQL variants pinned so SQL Server never gets NTEXT, IMAGE or DATETIME."""
    if dtype == pl.Boolean:
        return sa.Boolean()
    if dtype in (pl.Int8, pl.Int16, pl.UInt8):
        return sa.SmallInteger()
    if dtype in (pl.Int32, pl.UInt16):
        return sa.Integer()
    if dtype.is_integer():
        return sa.BigInteger()
    if dtype == pl.Float32:
        return sa.Float(24)
    if dtype.is_float():
        return sa.Double()
    if isinstance(dtype, pl.Decimal):
        return sa.Numeric(dtype.precision, dtype.scale)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return sa.DateTime(timezone=True).with_variant(mssql.DATETIMEOFFSET(), "mssql")
        return sa.DateTime().with_variant(mssql.DATETIME2(), "mssql")
    if dtype == pl.Date:
        return sa.Date().with_variant(mssql.DATE(), "mssql")
    if dtype == pl.Time:
        return sa.Time().with_variant(mssql.TIME(), "mssql")
    if dtype == pl.Binary:
        return sa.LargeBinary().with_variant(mssql.VARBINARY("max"), "mssql")
    return sa.UnicodeText().with_variant(mssql.NVARCHAR(), "mssql")


def polars_dtype(column_type: sa.types.TypeEngine, dialect: str) -> pl.DataType | None:
    """The polars type for a reflected column, or None to let polars infer it from the values."""
    if dialect == "sqlite" and isinstance(column_type, sa.Integer):
        return pl.Int64()  # SQLite INTEGER holds 64-bit values whatever the declared name
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
        if precision is not None and scale is not None and precision <= 38:
            return pl.Decimal(precision, scale)
        return pl.Float64() if scale is None and precision is None else pl.Decimal(38, scale or 0)
    if isinstance(column_type, sa.DateTime):
        return pl.Datetime("us", "UTC") if column_type.timezone else pl.Datetime("us")
    if isinstance(column_type, sa.Date):
        return pl.Date()
    if isinstance(column_type, sa.Time):
        return pl.Time()
    if isinstance(column_type, sa.String):
        return pl.String()
    if isinstance(column_type, sa.LargeBinary):
        return pl.Binary()
    return None
