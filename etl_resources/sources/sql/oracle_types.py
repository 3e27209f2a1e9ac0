"""Oracle columns: the lake type of a reflected column, how one is selected so python-oracledb hands over the
value exactly, and a query's numeric result columns typed from their metadata.

Oracle's NUMBER, INTEGER (NUMBER(38)) and FLOAT(b) (a NUMBER with binary precision) are decimal: each is fetched
as a Decimal, never through a float. BINARY_FLOAT and BINARY_DOUBLE are IEEE floats. The driver returns TIMESTAMP
WITH TIME ZONE without its zone, so it is selected as SYS_EXTRACT_UTC of itself."""

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import oracle

from etl_resources.databases.declared_types import MAX_DECIMAL_PRECISION, decimal_dtype

# Oracle reports an unconstrained NUMBER or a FLOAT(b) with this scale.
VARIABLE_SCALE = -127


def oracle_dtype(column_type: sa.types.TypeEngine) -> pl.DataType | None:
    if isinstance(column_type, oracle.BINARY_FLOAT):
        return pl.Float32()
    if isinstance(column_type, oracle.BINARY_DOUBLE):
        return pl.Float64()
    if isinstance(column_type, sa.Float):
        return pl.String()  # FLOAT(b), REAL, DOUBLE PRECISION: decimal digits of any scale
    if isinstance(column_type, oracle.NUMBER):
        return number_dtype(column_type.precision, column_type.scale)
    if isinstance(column_type, sa.Integer):
        return pl.Decimal(MAX_DECIMAL_PRECISION, 0)  # INTEGER is NUMBER(38): past Int64
    if isinstance(column_type, oracle.TIMESTAMP) and column_type.local_timezone:
        return pl.Datetime("us", "UTC")  # an instant, shown in the session's zone, which is UTC
    if isinstance(column_type, oracle.RAW):
        return pl.Binary()
    if isinstance(column_type, oracle.INTERVAL):
        return pl.String()  # DAY TO SECOND as `[-]HH:MM:SS[.ffffff]`, hours past 24
    return None


def number_dtype(precision: int | None, scale: int | None) -> pl.DataType:
    """NUMBER(p,s): Decimal(p,s); NUMBER(*,s) has 38 digits; a negative scale rounds to tens, hundreds… and so
    widens the integer; a scale above the precision (NUMBER(3,5) = 0.00ddd) needs as many digits as the scale.
    NUMBER without precision or scale holds any decimal: exact text."""
    if precision is None and scale is None:
        return pl.String()
    precision = MAX_DECIMAL_PRECISION if precision is None else precision
    scale = scale or 0
    if scale < 0:
        return decimal_dtype(precision - scale, 0)
    return decimal_dtype(max(precision, scale), scale)


def oracle_read_as(column: sa.Column) -> sa.ColumnElement | None:
    if isinstance(column.type, oracle.BINARY_FLOAT | oracle.BINARY_DOUBLE):
        return None
    if isinstance(column.type, sa.types.NumericCommon | sa.Integer):
        return sa.type_coerce(column, sa.Numeric(asdecimal=True)).label(column.name)
    if isinstance(column.type, sa.DateTime) and column.type.timezone:
        return sa.func.sys_extract_utc(column, type_=oracle.TIMESTAMP()).label(column.name)
    return None


def oracle_result_dtypes(columns: list[str], description) -> dict[str, pl.DataType]:
    """A query's NUMBER columns by their precision and scale, as for a table; the others by their values."""
    dtypes: dict[str, pl.DataType] = {}
    for name, (_, type_code, _, _, precision, scale, _) in zip(columns, description or (), strict=False):
        if getattr(type_code, "name", None) != "DB_TYPE_NUMBER":
            continue
        if not precision or scale == VARIABLE_SCALE:
            dtypes[name] = pl.String()
        elif scale >= 0:
            dtypes[name] = number_dtype(precision, scale)
    return dtypes
