"""Rows into Azure SQL / SQL Server through pyodbc's `fast_executemany`, inside the load's transaction.

`fast_executemany` sends each batch as one parameter array (ODBC array binding) instead of a round trip
per row. It runs on the raw pyodbc cursor of the SQLAlchemy connection that already holds the load's
transaction, so the DDL, the partition delete and every batch still commit or roll back together.
mssql-python's `bulkcopy()` (TDS bulk load) would be faster still, but it needs the DDL committed first
and reads metadata on a channel of its own, which would break that all-or-nothing load.
"""

from collections.abc import Iterable

import polars as pl
import sqlalchemy as sa

FAST_EXECUTEMANY_ROWS = 10_000


def uses_fast_executemany(dialect: sa.Dialect) -> bool:
    return dialect.name == "mssql" and dialect.driver == "pyodbc"


def insert_statement(dialect: sa.Dialect, table: sa.Table, columns: list[str]) -> str:
    quote = dialect.identifier_preparer
    return (
        f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(name) for name in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )


def odbc_rows(batch: pl.DataFrame) -> list[tuple]:
    """Row tuples for parameter arrays. Zoned timestamps go as the ISO text SQL Server parses into
    DATETIMEOFFSET, as SQLAlchemy's mssql dialect sends them: pyodbc does not bind aware datetimes the
    same way under `fast_executemany` as under `execute` (pyodbc issue 810)."""
    zoned = [name for name, dtype in batch.schema.items() if isinstance(dtype, pl.Datetime) and dtype.time_zone]
    if zoned:
        batch = batch.with_columns(pl.col(zoned).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00:00"))
    return batch.rows()


def fast_insert(conn: sa.Connection, table: sa.Table, batches: Iterable[pl.DataFrame]) -> None:
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.fast_executemany = True
        for batch in batches:
            cursor.executemany(insert_statement(conn.dialect, table, batch.columns), odbc_rows(batch))
    finally:
        cursor.close()
