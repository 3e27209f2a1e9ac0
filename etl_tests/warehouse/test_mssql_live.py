"""Loads into a real SQL Server or Azure SQL database: the one ETL_TEST_MSSQL_URL names (a SQLAlchemy URL), and only
then; without it every test here shows as skipped, with that reason. Nothing is faked: the rows go through the
platform's own load path and driver to the server and are read back from it.

Azure SQL: `mssql+mssqlpython://@<server>.database.windows.net/<db>?Authentication=ActiveDirectoryDefault` (Entra
ID: `az login` or a managed identity), or `mssql+mssqlpython://<user>:<password>@<server>.database.windows.net/<db>`
(SQL authentication). A local container (`docker run -d -e ACCEPT_EULA=Y -e MSSQL_SA_PASSWORD=<password>
-p 1433:1433 mcr.microsoft.com/mssql/server:2022-latest`):
`mssql+mssqlpython://sa:<password>@127.0.0.1:1433/master?TrustServerCertificate=yes`.
Each test works in a schema of its own (`etl_live_<hex>`), dropped with its tables afterwards, so runs that share a
database do not see each other.
"""

import datetime as dt
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from decimal import Decimal

import polars as pl
import sqlalchemy as sa

from etl_resources.warehouse.resource import load_partition
from etl_tests.support.mssql_server import MSSQL_URL_VARIABLE, stage_tables
from etl_tests.support.servers import REPO

DAY_1, DAY_2 = "2026-11-01", "2026-11-02"
UTC = dt.UTC


def frame(columns: dict[str, list], source: str, schema: dict[str, pl.DataType] | None = None) -> pl.LazyFrame:
    data = pl.DataFrame(columns, schema_overrides=schema)
    return data.with_columns(_source_file=pl.lit(source)).lazy()


def orders(rows: list[tuple], source: str) -> pl.LazyFrame:
    return frame({"order_id": [r[0] for r in rows], "status": [r[1] for r in rows]}, source, {"order_id": pl.Int64})


def nulls_last(row: tuple) -> tuple:
    return tuple((value is None, 0 if value is None else value) for value in row)


def read(engine: sa.Engine, schema: str, table: str, columns: list[str], where: dict | None = None) -> list[tuple]:
    """The rows as the server returns them, through the reflected column types, sorted here (not by the server's
    collation) so they compare with Python's own lists."""
    with engine.connect() as conn:
        reflected = sa.Table(table, sa.MetaData(), schema=schema, autoload_with=conn)
        query = sa.select(*(reflected.c[name] for name in columns))
        for name, value in (where or {}).items():
            query = query.where(reflected.c[name] == value)
        return sorted((tuple(row) for row in conn.execute(query)), key=nulls_last)


def order_rows(engine: sa.Engine, schema: str, table: str = "orders", day: str | None = None) -> list[tuple]:
    return read(engine, schema, table, ["order_id", "status", "_partition", "_source_file"], {"_partition": day} if day else None)


def test_replace_partition_replaces_only_its_day_and_a_rerun_changes_nothing(mssql_engine, mssql_schema):
    load_partition(mssql_engine, mssql_schema, "orders", DAY_1, orders([(1, "new"), (2, "new")], "a.parquet"))
    load_partition(mssql_engine, mssql_schema, "orders", DAY_2, orders([(3, "paid")], "b.parquet"))

    first = load_partition(mssql_engine, mssql_schema, "orders", DAY_1, orders([(2, "paid"), (4, "new")], "c.parquet"))
    once = order_rows(mssql_engine, mssql_schema)
    again = load_partition(mssql_engine, mssql_schema, "orders", DAY_1, orders([(2, "paid"), (4, "new")], "c.parquet"))

    assert first.rows == again.rows == 2
    assert once == [(2, "paid", DAY_1, "c.parquet"), (3, "paid", DAY_2, "b.parquet"), (4, "new", DAY_1, "c.parquet")]
    assert order_rows(mssql_engine, mssql_schema) == once
    assert stage_tables(mssql_engine, mssql_schema) == []


def test_append_adds_every_load_and_removes_nothing(mssql_engine, mssql_schema):
    load_partition(mssql_engine, mssql_schema, "orders", DAY_1, orders([(1, "new"), (2, "new")], "a.parquet"), "append")
    load_partition(mssql_engine, mssql_schema, "orders", DAY_1, orders([(1, "new")], "b.parquet"), "append")
    load_partition(mssql_engine, mssql_schema, "orders", DAY_2, orders([(3, "paid")], "c.parquet"), "append")

    assert order_rows(mssql_engine, mssql_schema) == [
        (1, "new", DAY_1, "a.parquet"),
        (1, "new", DAY_1, "b.parquet"),
        (2, "new", DAY_1, "a.parquet"),
        (3, "paid", DAY_2, "c.parquet"),
    ]
    assert stage_tables(mssql_engine, mssql_schema) == []


# Keys a T-SQL string built by hand would break on (quotes, LIKE wildcards), text outside Latin-1, and one key in
# two spellings of case. Each differs from the others under every collation the test knows of (ß = ss under
# Windows collations, so no key pairs those).
MERGE_DAY_1 = [("日本", "new"), ("O'Brien", "new"), ('say "hi"', "new"), ("Order-A", "new"), ("ключ", "new"), ("ключ", "paid")]
MERGE_DAY_2 = [("O'Brien", "paid"), ("O'Brien", "shipped"), ("ORDER-A", "paid"), ("Ærø", "new"), ('say "hi"', "paid"), ("50%_off", "new")]


def ignores_case(engine: sa.Engine, schema: str, table: str, column: str) -> bool:
    """Whether the column's collation (the database's default unless a load chose one) takes `a` and `A` as one key:
    then so does the merge, as any query on that column would."""
    with engine.connect() as conn:
        style = conn.execute(
            sa.text(
                "SELECT CAST(COLLATIONPROPERTY(collation_name, 'ComparisonStyle') AS int) FROM sys.columns "
                "WHERE object_id = OBJECT_ID(:table) AND name = :column"
            ),
            {"table": f"[{schema}].[{table}]", "column": column},
        ).scalar_one()
    return bool(style & 1)


def merged(days: list[tuple[str, str, list[tuple[str, str]]]], same_key) -> list[tuple]:
    """What the merge must leave: per key, the last row of the last day that had it."""
    latest: dict[str, tuple] = {}
    for partition, source, rows in days:
        for key, status in rows:
            latest[same_key(key)] = (same_key(key), status, partition, source)
    return sorted(latest.values())


def test_merge_upserts_on_a_string_key_the_last_row_wins_and_a_rerun_changes_nothing(mssql_engine, mssql_schema):
    def day(rows: list[tuple[str, str]], source: str) -> pl.LazyFrame:
        return frame({"order_key": [r[0] for r in rows], "status": [r[1] for r in rows]}, source)

    first = load_partition(mssql_engine, mssql_schema, "orders", DAY_1, day(MERGE_DAY_1, "a.parquet"), "merge", ("order_key",))
    load_partition(mssql_engine, mssql_schema, "orders", DAY_2, day(MERGE_DAY_2, "b.parquet"), "merge", ("order_key",))
    once = read(mssql_engine, mssql_schema, "orders", ["order_key", "status", "_partition", "_source_file"])
    rerun = load_partition(mssql_engine, mssql_schema, "orders", DAY_2, day(MERGE_DAY_2, "b.parquet"), "merge", ("order_key",))

    same_key = str.casefold if ignores_case(mssql_engine, mssql_schema, "orders", "order_key") else str
    expected = merged([(DAY_1, "a.parquet", MERGE_DAY_1), (DAY_2, "b.parquet", MERGE_DAY_2)], same_key)
    assert (first.rows, rerun.rows) == (len(MERGE_DAY_1), len(MERGE_DAY_2))
    assert sorted((same_key(key), *rest) for key, *rest in once) == expected
    assert read(mssql_engine, mssql_schema, "orders", ["order_key", "status", "_partition", "_source_file"]) == once
    assert stage_tables(mssql_engine, mssql_schema) == []


def test_merge_on_a_number_key_keeps_the_rows_the_day_does_not_mention(mssql_engine, mssql_schema):
    load_partition(mssql_engine, mssql_schema, "orders", DAY_1, orders([(1, "new"), (2, "new"), (3, "new")], "a.parquet"), "merge", ("order_id",))

    loaded = load_partition(mssql_engine, mssql_schema, "orders", DAY_2, orders([(2, "paid"), (4, "new"), (4, "shipped")], "b.parquet"), "merge", ("order_id",))

    assert loaded.rows == 3
    assert order_rows(mssql_engine, mssql_schema) == [
        (1, "new", DAY_1, "a.parquet"),
        (2, "paid", DAY_2, "b.parquet"),
        (3, "new", DAY_1, "a.parquet"),
        (4, "shipped", DAY_2, "b.parquet"),
    ]


AMSTERDAM = "Europe/Amsterdam"
# Column names a statement must quote: a percent sign (a DBAPI `format` placeholder), spaces, quotes, case.
PERCENT, QUOTED, CASED = "Rate %", 'it\'s "text"', "IsActive Flag"
TYPED_COLUMNS = {
    "n": (pl.Int32, [1, 2, 3, 4]),
    "i8": (pl.Int8, [-128, 127, 0, None]),
    "i16": (pl.Int16, [-32768, 32767, 0, None]),
    "i32": (pl.Int32, [-(2**31), 2**31 - 1, 0, None]),
    "i64": (pl.Int64, [-(2**63), 2**63 - 1, 0, None]),
    "u64": (pl.UInt64, [0, 2**64 - 1, 12345678901234567890, None]),
    "f32": (pl.Float32, [-3.4028234663852886e38, 3.4028234663852886e38, 0.5, None]),
    "f64": (pl.Float64, [-1.7976931348623157e308, 1.7976931348623157e308, 0.1, None]),
    PERCENT: (
        pl.Decimal(38, 10),
        [Decimal("-9999999999999999999999999999.9999999999"), Decimal("9999999999999999999999999999.9999999999"), Decimal("0.0000000001"), None],
    ),
    "at_utc": (
        pl.Datetime("us", "UTC"),
        [dt.datetime(1, 1, 1, tzinfo=UTC), dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), dt.datetime(2026, 11, 1, 12, 0, 0, 1, tzinfo=UTC), None],
    ),
    # 02:30 local twice on the night clocks go back: two instants the wall clock cannot tell apart.
    "at_amsterdam": (
        pl.Datetime("us", "UTC"),
        [
            dt.datetime(2026, 10, 25, 0, 30, 0, 250000, tzinfo=UTC),
            dt.datetime(2026, 10, 25, 1, 30, 0, 250001, tzinfo=UTC),
            dt.datetime(2026, 11, 1, 22, 59, 59, 999999, tzinfo=UTC),
            None,
        ],
    ),
    "at_naive": (pl.Datetime("us"), [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(2026, 11, 1, 12, 0, 0, 1), None]),
    "day": (pl.Date, [dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(2026, 11, 1), None]),
    "clock": (pl.Time, [dt.time(0, 0), dt.time(23, 59, 59, 999999), dt.time(12, 34, 56, 1), None]),
    CASED: (pl.Boolean, [True, False, True, None]),
    QUOTED: (
        pl.String,
        ["", "日本語 Ærø ключ 👍", 'O\'Brien said "100% done"; -- not a comment\nline two\r\n\ttab %s %(x)s ' + "é" * 5000, None],
    ),
    "blob": (pl.Binary, [b"", bytes(range(256)), b"\x00'\x00%", None]),
}


def as_held(dtype: pl.DataType, value):
    """A Float32 cell compares at the 24 bits it has: drivers widen a REAL to a double each their own way."""
    return struct.unpack("f", struct.pack("f", value))[0] if dtype == pl.Float32 and value is not None else value


def test_every_type_comes_back_as_it_went_in_cell_by_cell(mssql_engine, mssql_schema):
    source = pl.DataFrame({name: pl.Series(name, values, dtype) for name, (dtype, values) in TYPED_COLUMNS.items()})
    day = source.with_columns(pl.col("at_amsterdam").dt.convert_time_zone(AMSTERDAM), _source_file=pl.lit("types.parquet")).lazy()
    before = dt.datetime.now(UTC)

    loaded = load_partition(mssql_engine, mssql_schema, "typed", DAY_1, day)

    names = list(TYPED_COLUMNS)
    rows = read(mssql_engine, mssql_schema, "typed", [*names, "_partition", "_source_file", "_loaded_at"])
    assert loaded.rows == 4 and len(rows) == 4
    for index, row in enumerate(rows):
        cells = dict(zip([*names, "_partition", "_source_file", "_loaded_at"], row, strict=True))
        for name, (dtype, values) in TYPED_COLUMNS.items():
            assert as_held(dtype, cells[name]) == values[index], f"row {index + 1}, column {name!r}: {cells[name]!r} != {values[index]!r}"
        for name in ("at_utc", "at_amsterdam"):
            assert cells[name] is None or cells[name].utcoffset() is not None, f"{name} came back without its offset"
        assert cells["at_naive"] is None or cells["at_naive"].tzinfo is None
        assert (cells["_partition"], cells["_source_file"]) == (DAY_1, "types.parquet")
        assert before - dt.timedelta(seconds=5) <= cells["_loaded_at"] <= dt.datetime.now(UTC) + dt.timedelta(seconds=5)


def shop_orders_on(day: str) -> list[tuple]:
    with sqlite3.connect(".etl/demo/shop.db") as conn:
        rows = conn.execute("SELECT order_id, customer_id, status, quantity, amount FROM orders WHERE substr(ordered_at, 1, 10) = ?", (day,)).fetchall()
    return sorted((order_id, customer, status, quantity, Decimal(str(amount))) for order_id, customer, status, quantity, amount in rows)


def test_a_pipeline_run_loads_the_day_and_audits_it(platform, demo_sources, mssql_url, mssql_engine, mssql_schema):
    day = (dt.datetime.now(UTC).date() - dt.timedelta(days=1)).isoformat()
    defs = platform.configure(demo_sources.replace("schema: shop", f"schema: {mssql_schema}"), warehouse_url=mssql_url)
    before = dt.datetime.now(UTC)

    result = platform.materialize(defs, day, selection=["raw/shop_orders_raw", f"warehouse/{mssql_schema}/orders"])

    after = dt.datetime.now(UTC)
    assert result.success
    source = shop_orders_on(day)
    assert source and read(mssql_engine, mssql_schema, "orders", ["order_id", "customer_id", "status", "quantity", "amount"], {"_partition": day}) == source
    with mssql_engine.connect() as conn:
        audit = conn.execute(
            sa.text(
                "SELECT source_name, step, status, rows_loaded, parquet_files, error_message, started_at, finished_at "
                "FROM etl_audit_log WHERE target_table = :target AND partition_key = :day ORDER BY id"
            ),
            {"target": f"{mssql_schema}.orders", "day": day},
        ).all()
    assert [tuple(row[:6]) for row in audit] == [("shop_orders", "load", "success", len(source), 1, None)]
    started, finished = audit[0][6:]
    assert started.utcoffset() is not None and finished.utcoffset() is not None
    assert before - dt.timedelta(seconds=1) <= started <= finished <= after + dt.timedelta(seconds=1)


# Loads 2M rows of one day as a warehouse step would, after saying so on stdout.
BIG_LOAD = """
import os, sys
import polars as pl
import sqlalchemy as sa
from etl_resources.databases.engines import create_engine
from etl_resources.warehouse.resource import load_partition

schema, day, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = create_engine(sa.make_url(os.environ["ETL_TEST_MSSQL_URL"]))
big = pl.select(order_id=pl.int_range(0, rows, dtype=pl.Int64)).lazy().with_columns(status=pl.lit("big " * 10), _source_file=pl.lit("big.parquet"))
print("loading", flush=True)
load_partition(engine, schema, "orders", day, big)
print("loaded", flush=True)
"""
BIG_ROWS = 2_000_000


def wait_for_stage(engine: sa.Engine, schema: str, seconds: float) -> bool:
    """Whether a stage of `orders` shows up within `seconds`. Read uncommitted, so a stage the load made inside its
    transaction is seen, and the catalog the load holds locks on never blocks the look."""
    deadline = time.monotonic() + seconds
    with engine.connect().execution_options(isolation_level="READ UNCOMMITTED") as conn:
        while time.monotonic() < deadline:
            names = conn.execute(sa.text("SELECT name FROM sys.tables WHERE schema_id = SCHEMA_ID(:schema)"), {"schema": schema}).scalars().all()
            if any(name.startswith("orders__stage_") for name in names):
                return True
            time.sleep(0.05)
    return False


def test_a_load_killed_midway_leaves_the_day_as_it_was_and_the_next_load_clears_its_stage(tmp_path, mssql_url, mssql_engine, mssql_schema):
    previous = [(1, "new"), (2, "paid"), (3, "shipped")]
    load_partition(mssql_engine, mssql_schema, "orders", DAY_1, orders(previous, "before.parquet"))
    load_partition(mssql_engine, mssql_schema, "orders", DAY_2, orders([(9, "other day")], "other.parquet"))
    stderr = tmp_path / "load.stderr"
    env = {**os.environ, "PYTHONPATH": str(REPO), MSSQL_URL_VARIABLE: mssql_url}
    with stderr.open("w") as errors:
        load = subprocess.Popen(
            [sys.executable, "-c", BIG_LOAD, mssql_schema, DAY_1, str(BIG_ROWS)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        try:
            assert load.stdout.readline().strip() == "loading", stderr.read_text()[-3000:]
            staged = wait_for_stage(mssql_engine, mssql_schema, 60)
            time.sleep(0.2)  # rows on their way into the stage
            still_running = load.poll() is None
            load.send_signal(signal.SIGKILL)
        finally:
            load.kill()
            load.wait()

    assert still_running, f"the load of {BIG_ROWS} rows ended before it could be killed (stage seen: {staged}): {stderr.read_text()[-3000:]}"
    assert load.returncode == -signal.SIGKILL
    assert order_rows(mssql_engine, mssql_schema, day=DAY_1) == [(key, status, DAY_1, "before.parquet") for key, status in previous]
    assert order_rows(mssql_engine, mssql_schema, day=DAY_2) == [(9, "other day", DAY_2, "other.parquet")]

    loaded = load_partition(mssql_engine, mssql_schema, "orders", DAY_1, orders([(4, "after")], "after.parquet"))

    assert loaded.rows == 1
    assert order_rows(mssql_engine, mssql_schema) == [(4, "after", DAY_1, "after.parquet"), (9, "other day", DAY_2, "other.parquet")]
    assert stage_tables(mssql_engine, mssql_schema) == []


def test_two_loads_of_one_day_at_once_leave_exactly_one_of_them(mssql_engine, mssql_schema):
    load_partition(mssql_engine, mssql_schema, "orders", DAY_2, orders([(0, "other day")], "other.parquet"))
    contents = {
        "a.parquet": [(n, "a") for n in range(30_000)],
        "b.parquet": [(n, "b") for n in range(100_000, 120_000)],
    }
    start = threading.Barrier(len(contents))
    errors: list[BaseException] = []

    def load(source: str) -> None:
        try:
            start.wait()
            load_partition(mssql_engine, mssql_schema, "orders", DAY_1, orders(contents[source], source))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=load, args=(source,)) for source in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert not any(thread.is_alive() for thread in threads), "a load did not finish within 300 s"
    assert errors == []
    day = order_rows(mssql_engine, mssql_schema, day=DAY_1)
    candidates = {source: sorted((key, status, DAY_1, source) for key, status in rows) for source, rows in contents.items()}
    assert day in candidates.values(), f"{len(day)} rows from {sorted({row[3] for row in day})}: not exactly one load's rows"
    assert order_rows(mssql_engine, mssql_schema, day=DAY_2) == [(0, "other day", DAY_2, "other.parquet")]
    assert stage_tables(mssql_engine, mssql_schema) == []
