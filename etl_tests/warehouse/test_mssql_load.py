"""The Azure SQL / SQL Server load path, per write mode and driver. No SQL Server can run here: the driver is
a recording fake (etl_tests/support/tsql_driver.py) under SQLAlchemy's real mssql dialects, so these tests pin what
reaches the driver (statements, their order, parameters and their Python types, batches, bulk copies), not what
SQL Server does with it. test_mssql_live.py runs the same loads against a real server when one is given."""

import datetime as dt
import logging
import re
from decimal import Decimal

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from etl_resources.warehouse.audit import AuditRow, write_audit_rows
from etl_resources.warehouse.dialects.mssql.dialect import check_indexable
from etl_resources.warehouse.dialects.mssql.load import MssqlLoadError, uses_bulk_copy
from etl_resources.warehouse.resource import load_partition
from etl_resources.warehouse.write_modes import WriteModeError
from etl_tests.support import tsql_driver

DAY = "2026-11-01"
PYODBC = "mssql+pyodbc://etl:secret@sql.example/warehouse?driver=ODBC+Driver+18+for+SQL+Server"
MSSQLPYTHON = "mssql+mssqlpython://etl:secret@sql.example/warehouse"
STAGE = re.compile(r"orders__stage_[0-9a-f]{12}")


def engine_for(url: str, server: tsql_driver.Server) -> sa.Engine:
    return sa.create_engine(url, module=tsql_driver.module(server))


def orders(rows: int = 2) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "order_id": list(range(1, rows + 1)),
            "status": ["new"] * rows,
            "_source_file": ["raw/shop_orders/date=2026-11-01/part-0.parquet"] * rows,
        }
    )


def shapes(server: tsql_driver.Server) -> list[str]:
    """What the load sent, one line each, with the stage's random id as <id>."""
    lines = []
    for entry in server.statements():
        kind = entry[0]
        if kind == "execute":
            line = " ".join(entry[1].split())
        elif kind == "executemany":
            line = f"executemany{' (fast_executemany)' if entry[3] else ''}: {entry[1]} x {len(entry[2])} rows"
        elif kind == "bulkcopy_arrow":
            line = f"bulkcopy_arrow {entry[1]} x {entry[2].num_rows} rows"
        else:
            line = kind.upper()
        lines.append(STAGE.sub("orders__stage_<id>", line))
    return lines


def move(lines: list[str]) -> list[str]:
    """The statements of the transaction that changes the target: after its lock, up to the stage's drop."""
    start = next(i for i, line in enumerate(lines) if "@LockOwner = 'Transaction'" in line)
    end = next(i for i, line in enumerate(lines) if line.startswith("DROP TABLE dw.orders__stage_"))
    return lines[start + 1 : end]


LOCK_STAGE = (
    "SET NOCOUNT ON; DECLARE @granted int; EXEC @granted = sp_getapplock @Resource = ?, @LockMode = 'Exclusive', "
    "@LockOwner = 'Session', @LockTimeout = 0; SET NOCOUNT OFF; SELECT @granted"
)
LOCK_TARGET = (
    "SET NOCOUNT ON; DECLARE @granted int; EXEC @granted = sp_getapplock @Resource = ?, @LockMode = 'Exclusive', "
    "@LockOwner = 'Transaction', @LockTimeout = 900000; SET NOCOUNT OFF; SELECT @granted"
)
INSERT_FROM_STAGE = (
    "INSERT INTO [dw].[orders] ([order_id], [status], [_source_file], [_loaded_at], [_partition]) "
    "SELECT s.[order_id], s.[status], s.[_source_file], TODATETIMEOFFSET(?, 0), ? FROM [dw].[orders__stage_<id>] AS s"
)


def test_a_replace_over_pyodbc_stages_then_swaps_the_day_in_one_transaction():
    server = tsql_driver.Server()

    loaded = load_partition(engine_for(PYODBC, server), "dw", "orders", DAY, orders(3))

    assert loaded.rows == 3 and loaded.table == "dw.orders"
    assert shapes(server) == [
        "ROLLBACK",
        "CREATE SCHEMA dw",
        "SELECT t.name FROM sys.tables AS t JOIN sys.schemas AS s ON s.schema_id = t.schema_id WHERE s.name = COALESCE(?, SCHEMA_NAME()) "
        "AND t.name LIKE ? ESCAPE '\\' AND COL_LENGTH(QUOTENAME(s.name) + '.' + QUOTENAME(t.name), '_etl_row') IS NOT NULL",
        "COMMIT",
        LOCK_STAGE,
        "CREATE TABLE dw.orders__stage_<id> ( order_id BIGINT NULL, status NVARCHAR(max) NULL, _source_file NVARCHAR(1024) NULL, _etl_row BIGINT NOT NULL )",
        "COMMIT",
        "executemany (fast_executemany): INSERT INTO [dw].[orders__stage_<id>] ([order_id], [status], [_source_file], [_etl_row]) VALUES (?, ?, ?, ?) x 3 rows",
        "COMMIT",
        LOCK_TARGET,
        "CREATE TABLE dw.orders ( order_id BIGINT NULL, status NVARCHAR(max) NULL, _loaded_at DATETIMEOFFSET NOT NULL, "
        "_source_file NVARCHAR(1024) NOT NULL, _partition NVARCHAR(32) NOT NULL )",
        "CREATE INDEX ix_orders__partition ON dw.orders (_partition)",
        "DELETE FROM [dw].[orders] WHERE [_partition] = ?",
        INSERT_FROM_STAGE,
        "DROP TABLE dw.orders__stage_<id>",
        "COMMIT",
        "EXEC sp_releaseapplock @Resource = ?, @LockOwner = 'Session'",
        "COMMIT",
        "ROLLBACK",
    ]
    stage = STAGE.search(" ".join(entry[1] for entry in server.statements() if entry[0] == "execute")).group(0)
    locks = [entry[2] for entry in server.statements() if entry[0] == "execute" and "applock" in entry[1]]
    assert locks == [(f"etl-stage:dw.{stage}",), ("etl-load:dw.orders",), (f"etl-stage:dw.{stage}",)]


@pytest.mark.parametrize("url", [PYODBC, MSSQLPYTHON])
def test_append_inserts_the_stage_and_removes_nothing(url):
    server = tsql_driver.Server()

    load_partition(engine_for(url, server), "dw", "orders", DAY, orders(), "append")

    assert move(shapes(server)) == [
        "CREATE TABLE dw.orders ( order_id BIGINT NULL, status NVARCHAR(max) NULL, _loaded_at DATETIMEOFFSET NOT NULL, "
        "_source_file NVARCHAR(1024) NOT NULL, _partition NVARCHAR(32) NOT NULL )",
        "CREATE INDEX ix_orders__partition ON dw.orders (_partition)",
        INSERT_FROM_STAGE,
    ]


@pytest.mark.parametrize("url", [PYODBC, MSSQLPYTHON])
def test_merge_updates_then_inserts_under_updlock_holdlock_without_merge(url):
    server = tsql_driver.Server()
    frame = pl.LazyFrame({"order_id": ["A-1", "a-2"], "status": ["new", "paid"], "_source_file": ["f", "f"]})

    load_partition(engine_for(url, server), "dw", "orders", DAY, frame, "merge", ("order_id",))

    lines = move(shapes(server))
    assert not any("MERGE" in line for line in shapes(server))
    assert lines == [
        "CREATE TABLE dw.orders ( order_id NVARCHAR(450) NULL, status NVARCHAR(max) NULL, _loaded_at DATETIMEOFFSET NOT NULL, "
        "_source_file NVARCHAR(1024) NOT NULL, _partition NVARCHAR(32) NOT NULL )",
        "CREATE INDEX ix_orders__partition ON dw.orders (_partition)",
        "CREATE UNIQUE INDEX ux_orders__keys ON dw.orders (order_id)",
        "DELETE FROM [dw].[orders__stage_<id>] WHERE [_etl_row] NOT IN (SELECT MAX([_etl_row]) FROM [dw].[orders__stage_<id>] GROUP BY [order_id])",
        "UPDATE t SET [status] = s.[status], [_source_file] = s.[_source_file], [_loaded_at] = TODATETIMEOFFSET(?, 0), [_partition] = ? "
        "FROM [dw].[orders] AS t WITH (UPDLOCK, HOLDLOCK) JOIN [dw].[orders__stage_<id>] AS s ON t.[order_id] = s.[order_id]",
        "INSERT INTO [dw].[orders] ([order_id], [status], [_source_file], [_loaded_at], [_partition]) "
        "SELECT s.[order_id], s.[status], s.[_source_file], TODATETIMEOFFSET(?, 0), ? FROM [dw].[orders__stage_<id>] AS s "
        "WHERE NOT EXISTS (SELECT 1 FROM [dw].[orders] AS t WITH (UPDLOCK, HOLDLOCK) WHERE t.[order_id] = s.[order_id])",
    ]


def typed_frame() -> pl.LazyFrame:
    at = dt.datetime(2026, 11, 1, 23, 30, 0, 250001, tzinfo=dt.UTC)
    return pl.LazyFrame(
        {
            "tiny": [-128, None],
            "big_unsigned": [18446744073709551615, 0],
            "amount": [Decimal("-99999999999999999999999999.999999999999"), Decimal("0.000000000001")],
            "ordered_at": [at, None],
            "naive_at": [dt.datetime(2026, 11, 1, 1, 2, 3, 4), None],
            "day": [dt.date(1, 1, 1), dt.date(9999, 12, 31)],
            "clock": [dt.time(23, 59, 59, 999999), None],
            "flag": [True, None],
            "blob": [b"\x00\xff", None],
            "note": ["naïve 'quoted' 100%\nline", ""],
            "_source_file": ["f", "f"],
        },
        schema_overrides={"tiny": pl.Int8, "big_unsigned": pl.UInt64, "amount": pl.Decimal(38, 12)},
    ).with_columns(pl.col("ordered_at").dt.convert_time_zone("Europe/Amsterdam"))


def test_values_reach_pyodbc_as_typed_python_values_with_zoned_timestamps_as_utc_datetimes():
    server = tsql_driver.Server()

    load_partition(engine_for(PYODBC, server), None, "orders", DAY, typed_frame())

    (fill,) = [entry for entry in server.statements() if entry[0] == "executemany"]
    assert fill[2] == [
        (
            -128,
            Decimal("18446744073709551615"),
            Decimal("-99999999999999999999999999.999999999999"),
            dt.datetime(2026, 11, 1, 23, 30, 0, 250001),
            dt.datetime(2026, 11, 1, 1, 2, 3, 4),
            dt.date(1, 1, 1),
            dt.time(23, 59, 59, 999999),
            True,
            b"\x00\xff",
            "naïve 'quoted' 100%\nline",
            "f",
            0,
        ),
        (None, Decimal("0"), Decimal("0.000000000001"), None, None, dt.date(9999, 12, 31), None, None, None, "", "f", 1),
    ]
    stage_ddl = next(entry[1] for entry in server.statements() if entry[0] == "execute" and "CREATE TABLE orders__stage_" in entry[1])
    assert "ordered_at DATETIME2 NULL" in stage_ddl and "big_unsigned NUMERIC(20, 0) NULL" in stage_ddl and "tiny SMALLINT NULL" in stage_ddl
    insert = next(entry for entry in server.statements() if entry[0] == "execute" and entry[1].startswith("INSERT INTO [orders]"))
    assert "TODATETIMEOFFSET(s.[ordered_at], 0)" in insert[1] and "s.[naive_at]," in insert[1]
    loaded_at, partition = insert[2]
    assert type(loaded_at) is dt.datetime and loaded_at.tzinfo is None and partition == DAY
    assert abs(loaded_at - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(minutes=1)


def test_mssql_python_bulk_copies_arrow_into_the_stage_by_position():
    server = tsql_driver.Server()

    loaded = load_partition(engine_for(MSSQLPYTHON, server), None, "orders", DAY, typed_frame())

    (copy,) = [entry for entry in server.statements() if entry[0] == "bulkcopy_arrow"]
    _, table_name, data, options = copy
    assert STAGE.fullmatch(table_name.strip("[]"))
    assert options == {"batch_size": 100_000, "timeout": 0, "keep_nulls": True, "table_lock": True}
    assert [(field.name, str(field.type)) for field in data.schema] == [
        ("tiny", "int16"),
        ("big_unsigned", "decimal128(20, 0)"),
        ("amount", "decimal128(38, 12)"),
        ("ordered_at", "timestamp[us]"),
        ("naive_at", "timestamp[us]"),
        ("day", "date32[day]"),
        ("clock", "time64[ns]"),
        ("flag", "bool"),
        ("blob", "large_binary"),
        ("note", "large_string"),
        ("_source_file", "large_string"),
        ("_etl_row", "int64"),
    ]
    assert data.column("ordered_at").to_pylist() == [dt.datetime(2026, 11, 1, 23, 30, 0, 250001), None]
    assert data.column("big_unsigned").to_pylist() == [Decimal("18446744073709551615"), Decimal("0")]
    assert not [entry for entry in server.statements() if entry[0] == "executemany"]
    assert loaded.rows == 2 and uses_bulk_copy(engine_for(MSSQLPYTHON, server).dialect) and not uses_bulk_copy(engine_for(PYODBC, server).dialect)


def test_a_refused_bulk_copy_empties_the_stage_and_sends_parameter_arrays_counting_rows_once(caplog):
    server = tsql_driver.Server(refuse_bulk_copy=True)

    with caplog.at_level(logging.WARNING):
        loaded = load_partition(engine_for(MSSQLPYTHON, server), "dw", "orders", DAY, orders(3), log=logging.getLogger("load"))

    lines = shapes(server)
    truncate = lines.index("TRUNCATE TABLE [dw].[orders__stage_<id>]")
    assert lines[truncate + 1] == "COMMIT"
    assert (
        lines[truncate + 2]
        == "executemany: INSERT INTO [dw].[orders__stage_<id>] ([order_id], [status], [_source_file], [_etl_row]) VALUES (?, ?, ?, ?) x 3 rows"
    )
    assert loaded.rows == 3
    assert "the bulk copy was refused (Bulk load is not supported on this endpoint); loading by parameter arrays instead" in caplog.text


def test_a_failed_move_rolls_back_then_drops_the_stage_and_releases_its_lock():
    server = tsql_driver.Server(fail_on="INSERT INTO [dw].[orders]")

    with pytest.raises(sa.exc.DBAPIError, match="the server refused"):
        load_partition(engine_for(PYODBC, server), "dw", "orders", DAY, orders())

    lines = shapes(server)
    failed = next(i for i, line in enumerate(lines) if line.startswith("INSERT INTO [dw].[orders] ("))
    assert lines[failed + 1 :] == [
        "ROLLBACK",
        "DROP TABLE IF EXISTS [dw].[orders__stage_<id>]",
        "COMMIT",
        "EXEC sp_releaseapplock @Resource = ?, @LockOwner = 'Session'",
        "COMMIT",
        "ROLLBACK",
    ]
    assert "COMMIT" not in lines[lines.index(LOCK_TARGET) : failed + 1]


def test_a_connection_lost_mid_move_raises_the_loads_own_error_and_drops_the_stage_over_a_new_one():
    """The server rolls a lost session's transaction back and frees its locks; the rollback that cannot reach
    it must not hide the load's error, and the stage goes on the next connection."""
    server = tsql_driver.Server(fail_on="INSERT INTO [dw].[orders]", breaks=True)

    with pytest.raises(sa.exc.DBAPIError, match="the server refused: INSERT INTO"):
        load_partition(engine_for(PYODBC, server), "dw", "orders", DAY, orders())

    lines = shapes(server)
    failed = next(i for i, line in enumerate(lines) if line.startswith("INSERT INTO [dw].[orders] ("))
    assert lines[failed + 1 : failed + 3] == ["DROP TABLE IF EXISTS [dw].[orders__stage_<id>]", "COMMIT"]


def test_a_target_lock_held_past_the_wait_fails_naming_the_table_and_changes_nothing():
    server = tsql_driver.Server(target_lock_code=-1)

    with pytest.raises(MssqlLoadError, match=r"table dw.orders: SQL Server did not grant the app lock 'etl-load:dw.orders' \(sp_getapplock returned -1.*fix:"):
        load_partition(engine_for(PYODBC, server), "dw", "orders", DAY, orders())

    lines = shapes(server)
    assert not [
        line
        for line in lines[lines.index(LOCK_TARGET) :]
        if line.startswith(("CREATE TABLE dw.orders ", "DELETE FROM [dw].[orders]", "INSERT INTO [dw].[orders] "))
    ]
    assert "DROP TABLE IF EXISTS [dw].[orders__stage_<id>]" in lines


def test_only_this_tables_stages_are_dropped_and_only_when_no_session_holds_them():
    server = tsql_driver.Server(tables=["rate%[x]__stage_0123456789ab", "rate%[x]__stage_report", "rate%[x]__stage_0123456789abc"])

    load_partition(engine_for(PYODBC, server), None, "rate%[x]", DAY, orders())

    listing = next(entry for entry in server.statements() if entry[0] == "execute" and "FROM sys.tables" in entry[1])
    assert listing[2] == (None, "rate\\%\\[x]\\_\\_stage\\_%")
    drops = [entry for entry in server.statements() if entry[0] == "execute" and "IF @granted >= 0 BEGIN DROP TABLE" in entry[1]]
    assert len(drops) == 1
    assert "DROP TABLE [rate%[x]]__stage_0123456789ab];" in drops[0][1]
    assert drops[0][2] == ("etl-stage:dbo.rate%[x]__stage_0123456789ab",) * 2


def test_a_merge_key_sql_server_cannot_index_is_refused_with_the_alter_that_fixes_it():
    table = sa.Table("orders", sa.MetaData(), sa.Column("order_id", mssql.NVARCHAR()), sa.Column("n", sa.Integer()), schema="dw")

    with pytest.raises(WriteModeError, match=r"merge key 'order_id' is NVARCHAR\(max\).*fix: ALTER TABLE dw.orders ALTER COLUMN order_id NVARCHAR\(450\)"):
        check_indexable(mssql.dialect(), table, ("order_id",))
    check_indexable(mssql.dialect(), table, ("n",))


def test_a_merge_finds_a_unique_index_where_the_dialect_reflects_no_unique_constraints(tmp_path, monkeypatch):
    """SQLAlchemy's mssql dialect raises NotImplementedError for unique constraints; a real SQLite made to do
    the same shows the merge then relies on the unique indexes it can list, and makes no second one."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    load_partition(engine, None, "orders", DAY, orders(), "merge", ("order_id",))

    def not_implemented(*args, **kwargs):
        raise NotImplementedError()

    monkeypatch.setattr(engine.dialect, "get_unique_constraints", not_implemented)
    load_partition(engine, None, "orders", "2026-11-02", orders(3), "merge", ("order_id",))

    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT order_id, _partition FROM orders ORDER BY order_id")).all() == [
            (1, "2026-11-02"),
            (2, "2026-11-02"),
            (3, "2026-11-02"),
        ]
    assert [index["name"] for index in sa.inspect(engine).get_indexes("orders") if index["unique"]] == ["ux_orders__keys"]


@pytest.mark.parametrize("url", [PYODBC, MSSQLPYTHON])
def test_audit_timestamps_go_as_typed_utc_datetimes_into_datetimeoffset(url):
    server = tsql_driver.Server()
    started = dt.datetime(2026, 11, 2, 1, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    row = AuditRow("run", "job x", "shop", "postgresql", "dw.orders", DAY, "load", "success", started, started + dt.timedelta(seconds=5), 3, 1)

    write_audit_rows(engine_for(url, server), [row])

    (insert,) = [entry for entry in server.sent if entry[0] == "execute" and entry[1].startswith("INSERT INTO etl_audit_log")]
    assert "TODATETIMEOFFSET(?, 0), TODATETIMEOFFSET(?, 0)" in insert[1]
    datetimes = [value for value in insert[2] if isinstance(value, dt.datetime)]
    assert datetimes == [dt.datetime(2026, 11, 1, 23, 0, 0, 123456), dt.datetime(2026, 11, 1, 23, 0, 5, 123456)]
    assert not any(isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\d \d", value) for value in insert[2])


def test_a_target_without_a_schema_shares_its_lock_with_the_same_table_named_in_the_default_schema():
    locks = []
    for schema in (None, "dbo", "DBO"):
        server = tsql_driver.Server()
        load_partition(engine_for(PYODBC, server), schema, "Orders", DAY, orders())
        locks.append(next(entry[2] for entry in server.statements() if entry[0] == "execute" and "@LockOwner = 'Transaction'" in entry[1]))

    assert locks == [("etl-load:dbo.orders",)] * 3
