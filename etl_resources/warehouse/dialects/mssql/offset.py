"""Timestamps with a zone into SQL Server's `DATETIMEOFFSET`, as typed parameters.

SQLAlchemy's pyodbc dialect sends an aware datetime as text for the server to parse, and pyodbc itself binds
one inconsistently between `execute` and `fast_executemany` (pyodbc issue 810). Here the value goes as a
plain UTC `DATETIME2` parameter, which every driver binds as a timestamp, and the statement turns it into
`DATETIMEOFFSET` with `TODATETIMEOFFSET(…, 0)`: the instant is kept to the microsecond, the offset is +00:00.
"""

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import mssql
from sqlalchemy.ext.compiler import compiles

UTC_OFFSET = 0


def utc_naive(value: dt.datetime) -> dt.datetime:
    """The same instant in UTC without a zone; a naive value is taken as UTC already."""
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def at_utc(expression: str) -> str:
    """T-SQL that makes a UTC `DATETIME2` expression (a column, a `?`) a `DATETIMEOFFSET` at +00:00."""
    return f"TODATETIMEOFFSET({expression}, {UTC_OFFSET})"


class _AtUtc(sa.sql.expression.ColumnElement):
    inherit_cache = True

    def __init__(self, bind: sa.sql.expression.BindParameter):
        self.bind = bind
        self.type = bind.type


@compiles(_AtUtc)
def _default(element: _AtUtc, compiler, **kw) -> str:
    return compiler.process(element.bind, **kw)


@compiles(_AtUtc, "mssql")
def _mssql(element: _AtUtc, compiler, **kw) -> str:
    return at_utc(compiler.process(element.bind, **kw))


class UtcOffset(sa.types.TypeDecorator):
    """`DATETIMEOFFSET` on SQL Server, `TIMESTAMP WITH TIME ZONE` or its nearest elsewhere, bound as typed UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine:
        return dialect.type_descriptor(mssql.DATETIMEOFFSET() if dialect.name == "mssql" else sa.DateTime(timezone=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        return utc_naive(value) if value is not None and dialect.name == "mssql" else value

    def bind_expression(self, bindvalue: sa.sql.expression.BindParameter) -> sa.sql.expression.ColumnElement:
        return _AtUtc(bindvalue)
