"""The Azure SQL insert path. No SQL Server can run here, so pyodbc's connection is a recording fake:
these tests pin what reaches the driver (statement, flag, batches, values), not what SQL Server does."""

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import mssql
from sqlalchemy.dialects.mssql import pymssql as mssql_pymssql
from sqlalchemy.dialects.mssql import pyodbc as mssql_pyodbc

from etl_resources.mssql_load import fast_insert, uses_fast_executemany


class RecordingCursor:
    def __init__(self, calls: list):
        self.calls = calls
        self.fast_executemany = False
        self.closed = False

    def executemany(self, statement: str, rows: list[tuple]) -> None:
        self.calls.append((self.fast_executemany, statement, rows))

    def close(self) -> None:
        self.closed = True


def fake_connection(calls: list) -> tuple[SimpleNamespace, list[RecordingCursor]]:
    cursors: list[RecordingCursor] = []

    def cursor() -> RecordingCursor:
        cursors.append(RecordingCursor(calls))
        return cursors[-1]

    dbapi = SimpleNamespace(cursor=cursor)
    return SimpleNamespace(dialect=mssql.dialect(), connection=SimpleNamespace(dbapi_connection=dbapi)), cursors


def test_batches_go_to_pyodbc_as_parameter_arrays_with_offsets_kept():
    table = sa.Table("orders", sa.MetaData(), sa.Column("order_id"), sa.Column("amount"), sa.Column("ordered_at"), sa.Column("user"), schema="dw")
    frame = pl.DataFrame(
        {
            "order_id": [1, 2, 3],
            "amount": [Decimal("12.50"), None, Decimal("0.01")],
            "ordered_at": [dt.datetime(2026, 11, 1, 23, 30, 0, 250000, tzinfo=dt.UTC)] * 3,
            "user": ["a", "b", None],
        },
        schema_overrides={"amount": pl.Decimal(12, 2)},
    ).with_columns(pl.col("ordered_at").dt.convert_time_zone("Europe/Amsterdam"))
    calls: list = []
    conn, cursors = fake_connection(calls)

    fast_insert(conn, table, [frame.slice(0, 2), frame.slice(2)])

    assert [fast for fast, _, _ in calls] == [True, True]
    assert {statement for _, statement, _ in calls} == {"INSERT INTO dw.orders (order_id, amount, ordered_at, [user]) VALUES (?, ?, ?, ?)"}
    assert calls[0][2] == [
        (1, Decimal("12.50"), "2026-11-01 23:30:00.250000+00:00", "a"),
        (2, None, "2026-11-01 23:30:00.250000+00:00", "b"),
    ]
    assert calls[1][2] == [(3, Decimal("0.01"), "2026-11-01 23:30:00.250000+00:00", None)]
    assert len(cursors) == 1 and cursors[0].closed


def test_only_azure_sql_over_pyodbc_takes_the_fast_path():
    assert uses_fast_executemany(mssql_pyodbc.dialect())
    assert not uses_fast_executemany(mssql_pymssql.dialect())
    assert not uses_fast_executemany(sa.create_engine("sqlite://").dialect)
