"""What differs between source databases, one entry per SQLAlchemy dialect: adding a source dialect is adding
an entry. A dialect without one is read by the defaults: through a server-side cursor, its columns typed by
their declarations, its window bounds zoned unless the watermark column is declared without a zone."""

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa

from etl_resources.databases.declared_types import declared_dtype
from etl_resources.sources.sql.mysql_types import mysql_dtype, mysql_read_as, mysql_result_dtypes
from etl_resources.sources.sql.oracle_types import oracle_dtype, oracle_read_as, oracle_result_dtypes


def _no_quirk(_) -> None:
    return None


def _untyped_result(_columns: list[str], _description) -> dict[str, pl.DataType]:
    return {}


def _sqlite_dtype(column_type: sa.types.TypeEngine) -> pl.DataType | None:
    """SQLite's storage classes: INTEGER holds 64-bit values and REAL 8 bytes whatever the declared name."""
    if isinstance(column_type, sa.Integer):
        return pl.Int64()
    if isinstance(column_type, sa.Float):
        return pl.Float64()
    return None


@dataclass(frozen=True)
class SourceDialect:
    """`naive_bounds`: the window is bound as UTC wall-clock times whatever the watermark column's type (SQLite
    compares text; python-oracledb drops a bound's zone, so Oracle's session is in UTC instead); otherwise
    zoned bounds for zoned columns. `session`: statements each connection runs before the extract, so values
    that depend on the session's time zone read, and compare, in UTC. `reads_adbc`: read columnar through ADBC.
    `column_dtype`: the lake type of a reflected column where the declaration alone would say wrong (None: by
    declaration). `read_as`: how a table column is selected where the driver's own conversion would change the
    value (None: as it is). `result_dtypes`: a query's column types from the cursor's description."""

    naive_bounds: bool = False
    session: tuple[str, ...] = ()
    reads_adbc: bool = False
    column_dtype: Callable[[sa.types.TypeEngine], pl.DataType | None] = _no_quirk
    read_as: Callable[[sa.Column], sa.ColumnElement | None] = _no_quirk
    result_dtypes: Callable[[list[str], object], dict[str, pl.DataType]] = _untyped_result


MYSQL = SourceDialect(session=("SET time_zone = '+00:00'",), column_dtype=mysql_dtype, read_as=mysql_read_as, result_dtypes=mysql_result_dtypes)
SOURCE_DIALECTS = {
    "sqlite": SourceDialect(naive_bounds=True, column_dtype=_sqlite_dtype),
    "postgresql": SourceDialect(reads_adbc=True),
    "mysql": MYSQL,
    "mariadb": MYSQL,
    "oracle": SourceDialect(
        naive_bounds=True,
        session=("ALTER SESSION SET TIME_ZONE = 'UTC'",),
        column_dtype=oracle_dtype,
        read_as=oracle_read_as,
        result_dtypes=oracle_result_dtypes,
    ),
}
DEFAULT_DIALECT = SourceDialect()


def source_dialect(name: str) -> SourceDialect:
    return SOURCE_DIALECTS.get(name, DEFAULT_DIALECT)


def polars_dtype(column_type: sa.types.TypeEngine, dialect: str) -> pl.DataType | None:
    """The lake type of a column of `dialect`, or None to let polars infer it from the values."""
    quirk = source_dialect(dialect).column_dtype(column_type)
    return quirk if quirk is not None else declared_dtype(column_type)
