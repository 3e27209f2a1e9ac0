"""Oracle sources against a real Oracle database, run only when ETL_TEST_ORACLE_URL names one (e.g.
`oracle+oracledb://etl:pw@host:1521/?service_name=FREEPDB1`; python-oracledb's thin mode needs no client); without
it every test here shows as skipped, saying why. Each test makes its own table, materializes it through the
platform into the lake and a SQLite warehouse, compares both cell by cell with the table as python-oracledb reads
it (every NUMBER as a Decimal, LOBs read out, zoned timestamps in UTC), and drops the table."""

import datetime as dt
import decimal
from collections.abc import Iterator

import oracledb
import polars as pl
import pytest
import sqlalchemy as sa

from etl_resources.databases.engines import create_engine
from etl_resources.lake.store import scan_partition
from etl_tests.sources.test_type_matrix import DAY, assert_matrix, sources_yaml
from etl_tests.support.oracle_server import drop_table, unique_table
from etl_tests.support.sql_sources import incremental_yaml

# (column, declaration, lake type, a value for each of three rows as SQL); a fourth row is NULL but for its id.
MATRIX = [
    ("n", "NUMBER", pl.String, ["12345678901234567890123456789012345678", "-1.5E-100", "0"]),
    ("n12", "NUMBER(12,2)", pl.Decimal(12, 2), ["1.10", "-9999999999.99", "0"]),
    ("n38", "NUMBER(38,10)", pl.Decimal(38, 10), ["1234567890123456789012345678.0123456789", "-9999999999999999999999999999.9999999999", "0"]),
    ("i", "INTEGER", pl.Decimal(38, 0), ["99999999999999999999999999999999999999", "-1", "0"]),
    ("bf", "BINARY_FLOAT", pl.Float32, ["1.5f", "-3.4E38f", "0f"]),
    ("bd", "BINARY_DOUBLE", pl.Float64, ["0.1d", "-1.7976931348623157E308d", "1.7976931348623157E308d"]),
    ("fl", "FLOAT(126)", pl.String, ["0.1", "-1E-130", "9.99E125"]),
    ("vc", "VARCHAR2(40 CHAR)", pl.String, ["'a%b ünï ''q'' \\ \"d\"'", "' '", "'x'"]),
    ("nvc", "NVARCHAR2(40)", pl.String, ["N'varchar ✓'", "N' '", "N'x'"]),
    ("c", "CHAR(5)", pl.String, ["'ab'", "'abcde'", "' '"]),
    ("cl", "CLOB", pl.String, ["TO_CLOB('clob ✓')", "TO_CLOB(' ')", "TO_CLOB('x')"]),
    ("ncl", "NCLOB", pl.String, ["TO_NCLOB('nclob ✓')", "TO_NCLOB(' ')", "TO_NCLOB('x')"]),
    ("r", "RAW(8)", pl.Binary, ["HEXTORAW('00FF10')", "HEXTORAW('00')", "HEXTORAW('FF')"]),
    ("bl", "BLOB", pl.Binary, ["TO_BLOB(HEXTORAW('01'))", "TO_BLOB(HEXTORAW('00'))", "TO_BLOB(HEXTORAW('FFFF'))"]),
    ("d", "DATE", pl.Datetime("us"), ["TIMESTAMP '2026-11-01 10:15:30'", "TIMESTAMP '0001-01-01 00:00:00'", "TIMESTAMP '9999-12-31 23:59:59'"]),
    (
        "ts",
        "TIMESTAMP(6)",
        pl.Datetime("us"),
        ["TIMESTAMP '2026-11-01 10:15:30.123456'", "TIMESTAMP '0001-01-01 00:00:00'", "TIMESTAMP '9999-12-31 23:59:59.999999'"],
    ),
    (
        "tstz",
        "TIMESTAMP(6) WITH TIME ZONE",
        pl.Datetime("us", "UTC"),
        ["TIMESTAMP '2026-11-01 10:15:30.123456 +05:30'", "TIMESTAMP '0001-01-01 00:00:00 +00:00'", "TIMESTAMP '9999-12-31 13:59:59.999999 -10:00'"],
    ),
    (
        "tsltz",
        "TIMESTAMP(6) WITH LOCAL TIME ZONE",
        pl.Datetime("us", "UTC"),
        ["TIMESTAMP '2026-11-01 10:15:30.123456 -08:00'", "TIMESTAMP '1970-01-01 00:00:00 +00:00'", "TIMESTAMP '2038-01-19 03:14:07.999999 +00:00'"],
    ),
    (
        "iv",
        "INTERVAL DAY(9) TO SECOND(6)",
        pl.String,
        ["INTERVAL '3 04:05:06.789' DAY TO SECOND", "INTERVAL '-1 00:00:00.000001' DAY(9) TO SECOND(6)", "INTERVAL '0 00:00:00' DAY TO SECOND"],
    ),
    ('"MixedCase"', "VARCHAR2(10)", pl.String, ["'Mixed'", "'m'", "' '"]),
    ('"rate%"', "NUMBER(5)", pl.Decimal(5, 0), ["5", "-1", "0"]),
    ('"it\'s"', "VARCHAR2(10)", pl.String, ["'quote'", "'\"'", "' '"]),
]
BOOLEAN = ("bo", "BOOLEAN", pl.Boolean, ["TRUE", "FALSE", "TRUE"])


@pytest.fixture(scope="module")
def oracle_engine(oracle_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(sa.make_url(oracle_url), poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def oracle_table(oracle_engine: sa.Engine) -> Iterator[str]:
    """A table name no one else uses; the test makes it, and it goes afterwards."""
    name = unique_table()
    yield name
    drop_table(oracle_engine, name)


def lake_name(column: str) -> str:
    """The name SQLAlchemy reflects: a case-insensitive (unquoted) Oracle name in lower case, a quoted one as written."""
    return column[1:-1] if column.startswith('"') else column


def as_source_holds(cursor, name, default_type, size, precision, scale):
    """Every NUMBER as a Decimal, whatever its declaration: the value Oracle holds, not a float near it."""
    if default_type is oracledb.DB_TYPE_NUMBER:
        return cursor.var(decimal.Decimal, arraysize=cursor.arraysize)
    return None


def duration_text(span: dt.timedelta) -> str:
    sign, span = ("-", -span) if span < dt.timedelta(0) else ("", span)
    minutes, seconds = divmod(span.days * 86400 + span.seconds, 60)
    text = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}"
    return text + (f".{span.microseconds:06d}" if span.microseconds else "")


def in_lake_form(value, dtype: pl.DataType):
    """python-oracledb's value in the lake's form: exact text of a NUMBER without precision (or a FLOAT), zoned
    timestamps as UTC instants, intervals as `[-]HH:MM:SS[.ffffff]`, LOBs read out."""
    if value is None:
        return None
    if isinstance(value, oracledb.LOB):
        value = value.read()
    if dtype == pl.String and isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.timedelta):
        return duration_text(value)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:
        return value.replace(tzinfo=dt.UTC)
    return value


def read_back(engine: sa.Engine, table: str, columns: list[tuple]) -> list[dict]:
    select = ", ".join(f"SYS_EXTRACT_UTC({name}) AS {name}" if declaration.endswith("WITH TIME ZONE") else name for name, declaration, *_ in columns)
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("ALTER SESSION SET TIME_ZONE = 'UTC'")
        cursor.outputtypehandler = as_source_holds
        cursor.execute(f"SELECT {select} FROM {table} ORDER BY id")
        return [{lake_name(name): in_lake_form(value, dtype) for (name, _, dtype, _), value in zip(columns, row, strict=True)} for row in cursor.fetchall()]
    finally:
        connection.close()


def test_oracle_source_types_arrive_exactly(oracle_url, platform, oracle_engine, oracle_table, workdir):
    """BOOLEAN columns exist from Oracle 23ai on, and are in the matrix there. Oracle stores '' as NULL, so the
    matrix has no empty strings."""
    with oracle_engine.connect() as conn:
        matrix = [*MATRIX, BOOLEAN] if conn.dialect.server_version_info[0] >= 23 else MATRIX
    columns = [("id", "NUMBER(10) PRIMARY KEY", pl.Decimal(10, 0), ["1", "2", "3"]), *matrix]
    with oracle_engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {oracle_table} ({', '.join(f'{name} {declaration}' for name, declaration, *_ in columns)})")
        for row in range(3):
            conn.exec_driver_sql(f"INSERT INTO {oracle_table} VALUES ({', '.join(values[row] for *_, values in columns)})")
        conn.exec_driver_sql(f"INSERT INTO {oracle_table} (id) VALUES (4)")
    source_rows = read_back(oracle_engine, oracle_table, columns)
    warehouse_url = f"sqlite:///{workdir / 'warehouse.db'}"
    defs = platform.configure(sources_yaml(oracle_url, [oracle_table]), warehouse_url=warehouse_url)

    assert platform.materialize(defs, DAY).success

    assert source_rows[0]["n"] == "12345678901234567890123456789012345678" and source_rows[1]["iv"] == "-24:00:00.000001"
    lake_types = {lake_name(name): dtype for name, _, dtype, _ in columns}
    assert assert_matrix(platform, defs, warehouse_url, oracle_table, source_rows, lake_types) is None


DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
# Instants in UTC on the edges of the days; 2026-11-03 has none.
EDGES = [
    dt.datetime(2026, 10, 31, 23, 59, 59, 999999),
    dt.datetime(2026, 11, 1),
    dt.datetime(2026, 11, 1, 12, 0, 0, 500000),
    dt.datetime(2026, 11, 1, 23, 59, 59, 999999),
    dt.datetime(2026, 11, 2),
    dt.datetime(2026, 11, 2, 0, 0, 0, 1),
    dt.datetime(2026, 11, 4),
    dt.datetime(2026, 11, 5),
]
WATERMARKS = {"by_date": "d", "by_timestamp": "ts", "by_tstz": "tstz", "by_query": "tstz"}


def edge_literals(i: int, at: dt.datetime) -> str:
    """DATE holds whole seconds; the zoned value is written in +05:00 or -08:00, the same instant."""
    hours, offset = (5, "+05:00") if i % 2 else (-8, "-08:00")
    local = at + dt.timedelta(hours=hours)
    return f"{i}, TIMESTAMP '{at:%Y-%m-%d %H:%M:%S}', TIMESTAMP '{at:%Y-%m-%d %H:%M:%S.%f}', TIMESTAMP '{local:%Y-%m-%d %H:%M:%S.%f} {offset}'"


def days_yaml(connection: str, table: str) -> str:
    what = {name: f"table: {table}\n    watermark_column: {column}" for name, column in WATERMARKS.items() if name != "by_query"}
    what["by_query"] = f"query: SELECT id, SYS_EXTRACT_UTC(tstz) AS tstz FROM {table}\n    watermark_column: tstz"
    return incremental_yaml(connection, what, DAYS[0])


def test_incremental_days_take_exactly_their_rows(oracle_url, platform, oracle_engine, oracle_table, workdir):
    with oracle_engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {oracle_table} (id NUMBER(10), d DATE, ts TIMESTAMP(6), tstz TIMESTAMP(6) WITH TIME ZONE)")
        for i, at in enumerate(EDGES, start=1):
            conn.exec_driver_sql(f"INSERT INTO {oracle_table} VALUES ({edge_literals(i, at)})")
        conn.exec_driver_sql(f"INSERT INTO {oracle_table} (id) VALUES ({len(EDGES) + 1})")
    warehouse_url = f"sqlite:///{workdir / 'warehouse.db'}"
    defs = platform.configure(days_yaml(oracle_url, oracle_table), warehouse_url=warehouse_url)

    assert platform.materialize(defs, DAYS[0], DAYS[-1]).success

    lake = platform.lake(defs)
    for name, column in WATERMARKS.items():
        wanted = []
        for day in DAYS:
            start = dt.datetime.fromisoformat(day)
            held = [(i, at.replace(microsecond=0) if column == "d" else at) for i, at in enumerate(EDGES, start=1)]
            want = [(i, at) for i, at in held if start <= at < start + dt.timedelta(days=1)]
            frame = scan_partition(lake, f"raw/{name}", day).collect().sort("id")
            got = [(int(i), at.replace(tzinfo=None)) for i, at in frame.select("id", column).iter_rows()]
            assert got == want, f"{name} {day}"
            wanted += [(day, i) for i, _ in want]
        assert [(day, int(i)) for day, i in platform.query(defs, f"SELECT _partition, id FROM {name} ORDER BY _partition, id")] == wanted, name
    assert [i for i, at in enumerate(EDGES, start=1) if dt.datetime(2026, 11, 3) <= at < dt.datetime(2026, 11, 4)] == []
