"""The type matrix: every common column type of PostgreSQL, MariaDB and SQLite sources goes source -> lake ->
warehouse (PostgreSQL and SQLite) in a real materialization, and is compared cell by cell with the source as its
own driver reads it back. SQL Server cannot run here: its part asserts the T-SQL DDL that warehouse/types.py produces,
compiled by SQLAlchemy's mssql dialect, for each lake type. The forms a value takes where a type has no exact
counterpart are the ones the README's type table documents."""

import datetime as dt
import json
import math
import sqlite3
from decimal import Decimal

import polars as pl
import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql
from sqlalchemy.dialects import sqlite as sqlite_dialect

from etl_resources.lake.store import scan_partition
from etl_resources.sources.sql.extract import SourceTypeError, _checked_frame
from etl_resources.warehouse.resource import load_partition
from etl_resources.warehouse.types import WarehouseTypeError, check_column_types, sql_type
from etl_tests.support import tsql_driver

DAY = "2026-11-01"
ODD_NAMES = ["rate%", "two words", 'it\'s "q"', "MixedCase"]
BIG = "1234567890123456789012345678901234567890"
PI50 = "3.14159265358979323846264338327950288419716939937510"


def sources_yaml(connection: str, tables: list[str]) -> str:
    return "sources:\n" + "".join(
        f"""  - name: {table}
    kind: sql
    connection: {connection}
    table: {table}
    mode: snapshot
    start_date: {DAY}
    target: {{schema: dw, table: {table}}}
"""
        for table in tables
    )


def query_yaml(connection: str, query: str) -> str:
    """A snapshot `query:` source named q; the query as a YAML block, so its quotes and `%` stay as written."""
    return f"""
sources:
  - name: q
    kind: sql
    connection: {connection}
    query: |-
      {query}
    mode: snapshot
    start_date: {DAY}
    target: {{schema: dw, table: q}}
"""


def lake_rows(platform, defs, table: str) -> tuple[pl.Schema, list[dict]]:
    frame = scan_partition(platform.lake(defs), f"raw/{table}", DAY).collect().sort("id")
    return frame.schema, frame.to_dicts()


def warehouse_rows(warehouse_url: str, table: str, columns: list[str]) -> list[dict]:
    if warehouse_url.startswith("sqlite"):
        with sqlite3.connect(sa.make_url(warehouse_url).database) as conn:
            names = ", ".join('"' + name.replace('"', '""') + '"' for name in columns)
            return [dict(zip(columns, row, strict=True)) for row in conn.execute(f'SELECT {names} FROM "{table}" ORDER BY id')]
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        target = sa.Table(table, sa.MetaData(), schema="dw", autoload_with=conn)
        rows = [dict(row._mapping) for row in conn.execute(sa.select(*(target.c[name] for name in columns)).order_by(target.c.id))]
    engine.dispose()
    return rows


def in_warehouse(value, dtype: pl.DataType, sqlite: bool):
    """The documented form of a lake value in the warehouse: nested values as JSON text, UInt64 as NUMERIC(20,0);
    on SQLite, whose
    columns hold only numbers, text and bytes, timestamps as ISO text in UTC, booleans as 0/1."""
    if value is None:
        return None
    if isinstance(dtype, pl.List):
        return json.dumps(value)
    if dtype == pl.UInt64:
        return Decimal(value)  # NUMERIC(20,0): past BIGINT; on SQLite its exact text
    if not sqlite:
        return value
    if isinstance(dtype, pl.Datetime):
        return (
            value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
            if value.year >= 1000
            else f"{value.replace(tzinfo=None):%Y-%m-%d %H:%M:%S.%f}".rjust(26, "0")
        )
    if dtype == pl.Date:
        return value.isoformat()
    if dtype == pl.Time:
        return value.strftime("%H:%M:%S.%f")
    if dtype == pl.Boolean:
        return int(value)
    return value


def same(expected, got) -> bool:
    if isinstance(expected, float) and isinstance(got, float) and math.isnan(expected):
        return math.isnan(got)
    if isinstance(expected, Decimal) and got is not None and not isinstance(got, Decimal):
        return Decimal(str(got)) == expected  # SQLite: a decimal comes back as its number or its exact text
    return type(expected) is type(got) and expected == got if expected is not None else got is None


def mismatches(expected: list[dict], got: list[dict], where: str) -> list[str]:
    assert len(expected) == len(got), f"{where}: {len(got)} rows, source has {len(expected)}"
    return [
        f"{where} row {i} column {name!r}: source {want!r}, got {row.get(name)!r}"
        for i, (want_row, row) in enumerate(zip(expected, got, strict=True))
        for name, want in want_row.items()
        if not same(want, row.get(name))
    ]


def assert_matrix(platform, defs, warehouse_url: str, table: str, source_rows: list[dict], lake_types: dict[str, pl.DataType]) -> None:
    schema, lake = lake_rows(platform, defs, table)
    assert {name: schema[name] for name in lake_types} == lake_types
    problems = mismatches(source_rows, [{k: v for k, v in row.items() if not k.startswith("_")} for row in lake], f"lake {table}")
    sqlite = warehouse_url.startswith("sqlite")
    loaded = warehouse_rows(warehouse_url, table, list(source_rows[0]))
    expected = [{name: in_warehouse(value, schema[name], sqlite) for name, value in row.items()} for row in source_rows]
    problems += mismatches(expected, loaded, f"warehouse {table}")
    assert not problems, "\n".join(problems)


@pytest.fixture(params=["postgresql", "sqlite"])
def warehouse_url(request, postgres, workdir):
    if request.param == "sqlite":
        return f"sqlite:///{workdir / 'warehouse.db'}"
    return postgres.url(postgres.create_database("warehouse"))


QUOTED = '"it\'s ""q"""'
PG_TABLE = f"""
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE matrix (
    id integer PRIMARY KEY, i2 smallint, i4 integer, i8 bigint,
    n numeric, n12 numeric(12,2), n38 numeric(38,10), n50 numeric(50,10),
    f4 real, f8 double precision, t text, c char(5), vc varchar(40),
    j json, jb jsonb, u uuid, b bytea, d date, tm time, ttz timetz, ts timestamp, tstz timestamptz,
    iv interval, ip inet, net cidr, e mood, ai integer[], at text[], bt bit(3), vb varbit, bo boolean,
    "rate%" integer, "two words" text, {QUOTED} text, "MixedCase" text
);
INSERT INTO matrix VALUES
 (1, 7, 8, 9, {BIG}, 1.10, 1234567890123456789012345678.0123456789, {BIG}.0123456789, 1.5, 0.1, 'a%b ünï ''q'' \\ "d"', 'ab', 'varchar ✓',
  '{{"a": [1, 2.50], "b": "x"}}', '{{"b": "x", "a": [1, 2.50]}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff10', '2026-11-01', '10:15:30.123456',
  '10:15:30+02', '2026-11-01 10:15:30.123456', '2026-11-01 10:15:30.123456+05:30', '1 year 2 mons 3 days 04:05:06.789', '10.1.2.3/8', '10.0.0.0/8',
  'happy', '{{1,NULL,3}}', '{{"x y",NULL,"z,\\"w"}}', B'101', B'1', true, 5, 'sp ace', 'quote', 'Mixed'),
 (2, -32768, -2147483648, -9223372036854775808, {PI50}, -9999999999.99, -9999999999999999999999999999.9999999999, -1e39, '-Infinity', 'Infinity',
  '', 'abcde', '', '[]', 'null', '00000000-0000-0000-0000-000000000000', '\\x', '0001-01-01', '00:00:00', '23:59:59.999999-12',
  '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '-1 days -00:00:00.000001', '::1', '2001:db8::/32',
  'sad', '{{}}', '{{}}', B'000', B'', false, -1, '', '', ''),
 (3, 32767, 2147483647, 9223372036854775807, 0, 0, 0, 0, 'Infinity', '-Infinity', 'x', ' ', 'x', '{{}}', '{{}}',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '\\xff', '9999-12-31', '23:59:59.999999', '00:00:00+14', '9999-12-31 23:59:59.999999',
  '9999-12-31 23:59:59.999999+00', '0', '255.255.255.255', '0.0.0.0/0', 'happy', '{{-1}}', '{{""}}', B'111', B'0101', true, 0, ' ', '"', 'm'),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE nan_floats (id integer PRIMARY KEY, f4 real, f8 double precision);
INSERT INTO nan_floats VALUES (1, 'NaN', 'NaN'), (2, 'Infinity', '-Infinity'), (3, NULL, 1.5);
"""
# Kept as the server's own text: no lake type holds them exactly (a uuid's bytes, an interval's months, a timetz's zone…).
PG_AS_TEXT = ["n", "n50", "j", "jb", "u", "iv", "ip", "net", "ttz", "bt", "vb"]
PG_LAKE_TYPES = {
    "i2": pl.Int16,
    "i4": pl.Int32,
    "i8": pl.Int64,
    "n12": pl.Decimal(12, 2),
    "n38": pl.Decimal(38, 10),
    "f4": pl.Float32,
    "f8": pl.Float64,
    "t": pl.String,
    "c": pl.String,
    "vc": pl.String,
    "b": pl.Binary,
    "d": pl.Date,
    "tm": pl.Time,
    "ts": pl.Datetime("us"),
    "tstz": pl.Datetime("us", "UTC"),
    "e": pl.String,
    "ai": pl.List(pl.Int32),
    "at": pl.List(pl.String),
    "bo": pl.Boolean,
    **dict.fromkeys(PG_AS_TEXT, pl.String),
    "rate%": pl.Int32,
    **dict.fromkeys(ODD_NAMES[1:], pl.String),
}


@pytest.fixture
def pg_source(postgres, monkeypatch):
    database = postgres.create_database("matrix")
    with psycopg.connect(host="127.0.0.1", port=postgres.port, user="postgres", dbname=database, autocommit=True) as conn:
        conn.execute(PG_TABLE)
    return {"port": postgres.port, "database": database, "connection": postgres.url(database)}


def pg_source_rows(source, table: str, as_text: list[str]) -> list[dict]:
    """The table as psycopg reads it; the columns the lake keeps as text read as the server's text of them."""
    with psycopg.connect(host="127.0.0.1", port=source["port"], user="postgres", dbname=source["database"]) as conn:
        cursor = conn.execute(f"SELECT * FROM {table} ORDER BY id")
        names = [column.name for column in cursor.description]
        select = ", ".join(f'"{name}"::text' if name in as_text else '"' + name.replace('"', '""') + '"' for name in names)
        return [dict(zip(names, row, strict=True)) for row in conn.execute(f"SELECT {select} FROM {table} ORDER BY id")]


def test_postgresql_source_types_arrive_exactly(platform, pg_source, warehouse_url):
    defs = platform.configure(sources_yaml(pg_source["connection"], ["matrix"]), warehouse_url=warehouse_url)

    assert platform.materialize(defs, DAY).success

    source_rows = pg_source_rows(pg_source, "matrix", PG_AS_TEXT)
    assert source_rows[0]["n"] == BIG and source_rows[1]["n"] == PI50
    assert assert_matrix(platform, defs, warehouse_url, "matrix", source_rows, PG_LAKE_TYPES) is None


def test_a_query_source_keeps_percent_signs_and_opaque_types(platform, pg_source, warehouse_url):
    query = """SELECT id, 'a%b' AS "rate%", 7 % 3 AS modulo, jb, u, n, iv FROM matrix WHERE t LIKE 'a%' OR id = 4"""
    defs = platform.configure(query_yaml(pg_source["connection"], query), warehouse_url=warehouse_url)

    assert platform.materialize(defs, DAY).success

    with psycopg.connect(host="127.0.0.1", port=pg_source["port"], user="postgres", dbname=pg_source["database"]) as conn:
        names_and_rows = conn.execute(query.replace("jb, u, n, iv", "jb::text, u::text, n::text, iv::text") + " ORDER BY id")
        names = [column.name for column in names_and_rows.description]
        source_rows = [dict(zip(names, row, strict=True)) for row in names_and_rows]
    assert source_rows[0]["rate%"] == "a%b" and source_rows[0]["n"] == BIG
    lake_types = {"rate%": pl.String, "modulo": pl.Int32, "jb": pl.String, "u": pl.String, "n": pl.String, "iv": pl.String}
    assert assert_matrix(platform, defs, warehouse_url, "q", source_rows, lake_types) is None


def test_an_empty_day_of_a_plain_numeric_column_keeps_its_schema(platform, pg_source, warehouse_url):
    with psycopg.connect(host="127.0.0.1", port=pg_source["port"], user="postgres", dbname=pg_source["database"], autocommit=True) as conn:
        conn.execute("CREATE TABLE empty_day (id integer, n numeric, n12 numeric(12,2), jb jsonb, at timestamptz)")
    defs = platform.configure(
        f"""
sources:
  - name: empty_day
    kind: sql
    connection: {pg_source["connection"]}
    table: empty_day
    mode: incremental
    watermark_column: at
    start_date: {DAY}
    target: {{schema: dw, table: empty_day}}
""",
        warehouse_url=warehouse_url,
    )

    assert platform.materialize(defs, DAY).success

    schema, rows = lake_rows(platform, defs, "empty_day")
    assert rows == []
    assert {name: schema[name] for name in ("n", "n12", "jb")} == {"n": pl.String, "n12": pl.Decimal(12, 2), "jb": pl.String}


def test_nan_and_infinities_survive_on_postgresql_and_fail_naming_the_column_on_sqlite(platform, pg_source, warehouse_url):
    defs = platform.configure(sources_yaml(pg_source["connection"], ["nan_floats"]), warehouse_url=warehouse_url)

    result = platform.materialize(defs, DAY, raise_on_error=False)

    source_rows = pg_source_rows(pg_source, "nan_floats", [])
    if warehouse_url.startswith("sqlite"):
        assert not result.success
        failure = str(next(e for e in result.all_events if e.is_step_failure).step_failure_data.error)
        assert "column 'f4': NaN cannot be stored in SQLite" in failure
        assert f"source 'nan_floats', {DAY}:" in failure
        assert (
            mismatches(source_rows, [{k: v for k, v in row.items() if not k.startswith("_")} for row in lake_rows(platform, defs, "nan_floats")[1]], "lake")
            == []
        )
    else:
        assert result.success
        assert assert_matrix(platform, defs, warehouse_url, "nan_floats", source_rows, {"f4": pl.Float32, "f8": pl.Float64}) is None


def test_a_column_that_turns_from_int_to_text_fails_the_load_naming_it(platform, pg_source, workdir):
    warehouse_url = f"sqlite:///{workdir / 'warehouse.db'}"
    with psycopg.connect(host="127.0.0.1", port=pg_source["port"], user="postgres", dbname=pg_source["database"], autocommit=True) as conn:
        conn.execute("CREATE TABLE drift (id integer, code integer); INSERT INTO drift VALUES (1, 10)")
    defs = platform.configure(sources_yaml(pg_source["connection"], ["drift"]), warehouse_url=warehouse_url)
    assert platform.materialize(defs, DAY).success
    with psycopg.connect(host="127.0.0.1", port=pg_source["port"], user="postgres", dbname=pg_source["database"], autocommit=True) as conn:
        conn.execute("ALTER TABLE drift ALTER COLUMN code TYPE text; UPDATE drift SET code = 'abc'")

    result = platform.materialize(defs, "2026-11-02", raise_on_error=False)

    assert not result.success
    failure = str(next(e for e in result.all_events if e.is_step_failure).step_failure_data.error)
    assert "column 'code': the lake now has String, the warehouse column is INTEGER" in failure
    assert "source 'drift', 2026-11-02:" in failure
    assert "fix:" in failure
    with sqlite3.connect(workdir / "warehouse.db") as conn:
        assert conn.execute("SELECT _partition, code, typeof(code) FROM drift").fetchall() == [(DAY, 10, "integer")]


@pytest.mark.parametrize(
    ("dtype", "tsql"),
    [
        (pl.Boolean, "BIT"),
        (pl.Int8, "SMALLINT"),
        (pl.UInt8, "SMALLINT"),
        (pl.Int16, "SMALLINT"),
        (pl.UInt16, "INTEGER"),
        (pl.Int32, "INTEGER"),
        (pl.UInt32, "BIGINT"),
        (pl.Int64, "BIGINT"),
        (pl.UInt64, "NUMERIC(20, 0)"),
        (pl.Float32, "FLOAT(24)"),
        (pl.Float64, "DOUBLE PRECISION"),
        (pl.Decimal(12, 2), "NUMERIC(12, 2)"),
        (pl.Decimal(38, 10), "NUMERIC(38, 10)"),
        (pl.String, "NVARCHAR(max)"),
        (pl.Binary, "VARBINARY(max)"),
        (pl.Date, "DATE"),
        (pl.Time, "TIME"),
        (pl.Datetime("us"), "DATETIME2"),
        (pl.Datetime("us", "UTC"), "DATETIMEOFFSET"),
    ],
)
def test_sql_server_gets_a_tsql_type_for_each_lake_type(dtype, tsql):
    """No SQL Server runs here: the DDL is what SQLAlchemy's mssql dialect compiles from warehouse/types.py's choice."""
    assert sql_type(dtype).compile(dialect=mssql.dialect()) == tsql


MARIADB_TABLE = [
    """CREATE TABLE matrix (
        id INT PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
        i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, d12 DECIMAL(12,2), d65 DECIMAL(65,20), f FLOAT, db DOUBLE,
        t TEXT, c CHAR(5), vc VARCHAR(40), j JSON, u UUID, bl BLOB, vb VARBINARY(8), d DATE, tm TIME(6), ts DATETIME(6), tsz TIMESTAMP(6) NULL,
        e ENUM('happy','sad'), bt BIT(3), bo BOOLEAN, ip INET6, `rate%` INT, `two words` TEXT, `it's "q"` TEXT, MixedCase TEXT
    )""",
    f"""INSERT INTO matrix VALUES
     (1, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 1.10, {BIG}.01234567890123456789, 1.5, 0.1, 'a%b ünï ''q'' \\\\ "d"', 'ab', 'varchar ✓',
      '{{"a": [1, 2.50]}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', X'00ff10', X'01', '2026-11-01', '-838:59:59.000000',
      '2026-11-01 10:15:30.123456', '2026-11-01 10:15:30.123456', 'happy', b'101', TRUE, '2001:db8::1', 5, 'sp ace', 'quote', 'Mixed'),
     (2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, -9999999999.99, -{"9" * 45}.{"9" * 20},
      -3.4e38, -1.7976931348623157e308, '', 'abcde', '', '[]', '00000000-0000-0000-0000-000000000000', X'', X'', '1000-01-01', '00:00:00',
      '0001-01-01 00:00:00', '1970-01-01 00:00:01', 'sad', b'000', FALSE, '::', -1, '', '', ''),
     (3, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615, 0, 0,
      3.4e38, 1.7976931348623157e308, 'x', ' ', 'x', '{{}}', 'ffffffff-ffff-ffff-ffff-ffffffffffff', X'ff', X'ff', '9999-12-31', '838:59:59.999999',
      '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', 'happy', b'111', TRUE, '::ffff:255.255.255.255', 0, ' ', '"', 'm'),
     (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
]
MARIADB_LAKE_TYPES = {
    "ti": pl.Int8,
    "tiu": pl.UInt8,
    "si": pl.Int16,
    "siu": pl.UInt16,
    "mi": pl.Int32,
    "miu": pl.UInt32,
    "i": pl.Int32,
    "iu": pl.UInt32,
    "bi": pl.Int64,
    "biu": pl.UInt64,
    "d12": pl.Decimal(12, 2),
    "d65": pl.String,
    "f": pl.Float64,
    "db": pl.Float64,
    "t": pl.String,
    "c": pl.String,
    "vc": pl.String,
    "j": pl.String,
    "u": pl.String,
    "bl": pl.Binary,
    "vb": pl.Binary,
    "d": pl.Date,
    "tm": pl.String,
    "ts": pl.Datetime("us"),
    "tsz": pl.Datetime("us"),
    "e": pl.String,
    "bt": pl.UInt64,
    "bo": pl.Int8,
    "ip": pl.String,
    "rate%": pl.Int32,
    **dict.fromkeys(ODD_NAMES[1:], pl.String),
}


def mariadb_expected(name: str, value):
    """pymysql's value in the lake's form: wide decimals and TIME as their text, BIT as its number."""
    if value is None:
        return None
    if name == "d65":
        return str(value)
    if name == "tm":
        sign, span = ("-", -value) if value < dt.timedelta(0) else ("", value)
        hours, rest = divmod(span, dt.timedelta(hours=1))
        text = f"{sign}{hours:02d}:{rest.seconds // 60:02d}:{rest.seconds % 60:02d}"
        return text + (f".{rest.microseconds:06d}" if rest.microseconds else "")
    if name == "bt":
        return int.from_bytes(value, "big")
    return value


def test_mariadb_source_types_arrive_exactly(platform, mariadb, warehouse_url):
    """MariaDB has no NaN or infinite floats (it refuses them), so its floats are checked at their limits instead."""
    database = mariadb.create_database("matrix")
    connect = {"host": "127.0.0.1", "port": mariadb.port, "user": "root", "database": database, "charset": "utf8mb4", "autocommit": True}
    with pymysql.connect(**connect) as conn, conn.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00'")
        for statement in MARIADB_TABLE:
            cursor.execute(statement)
        cursor.execute("SELECT * FROM matrix ORDER BY id")
        names = [column[0] for column in cursor.description]
        source_rows = [{name: mariadb_expected(name, value) for name, value in zip(names, row, strict=True)} for row in cursor.fetchall()]
    defs = platform.configure(sources_yaml(mariadb.url(database), ["matrix"]), warehouse_url=warehouse_url)

    assert platform.materialize(defs, DAY).success

    assert source_rows[2]["biu"] == 2**64 - 1 and source_rows[0]["d65"] == f"{BIG}.01234567890123456789"
    assert assert_matrix(platform, defs, warehouse_url, "matrix", source_rows, MARIADB_LAKE_TYPES) is None


SQLITE_TABLE = f"""
CREATE TABLE matrix (id INTEGER PRIMARY KEY, i INTEGER, bi BIGINT, r REAL, f FLOAT, db DOUBLE, n NUMERIC(10,2), t TEXT, c CHAR(5), vc VARCHAR(40),
    j JSON, b BLOB, d DATE, tm TIME, ts DATETIME, bo BOOLEAN, "rate%" INTEGER, "two words" TEXT, {QUOTED} TEXT, "MixedCase" TEXT);
INSERT INTO matrix VALUES
 (1, 7, 9, 0.1, 1.5, 1e-300, 1.10, 'a%b ünï ''q'' \\ "d"', 'ab', 'varchar ✓', '{{"a": [1, 2.50]}}', X'00ff10', '2026-11-01', '10:15:30.123456',
  '2026-11-01 10:15:30.123456', 1, 5, 'sp ace', 'quote', 'Mixed'),
 (2, -9223372036854775808, -1, 9e999, -9e999, -1.7976931348623157e308, -99999999.99, '', 'abcde', '', '[]', X'', '0001-01-01', '00:00:00.000000',
  '0001-01-01 00:00:00.000000', 0, -1, '', '', ''),
 (3, 9223372036854775807, 0, -0.0, 3.4e38, 1.7976931348623157e308, 0, 'x', ' ', 'x', '{{}}', X'ff', '9999-12-31', '23:59:59.999999',
  '9999-12-31 23:59:59.999999', 1, 0, ' ', '"', 'm'),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"""
SQLITE_LAKE_TYPES = {
    "i": pl.Int64,
    "bi": pl.Int64,
    "r": pl.Float64,
    "f": pl.Float64,
    "db": pl.Float64,
    "n": pl.Decimal(10, 2),
    "t": pl.String,
    "c": pl.String,
    "vc": pl.String,
    "j": pl.String,
    "b": pl.Binary,
    "d": pl.Date,
    "tm": pl.Time,
    "ts": pl.Datetime("us"),
    "bo": pl.Boolean,
    "rate%": pl.Int64,
    **dict.fromkeys(ODD_NAMES[1:], pl.String),
}
# sqlite3 hands dates, times and timestamps over as the text SQLite holds, and booleans and decimals as numbers.
SQLITE_READS = {
    "d": dt.date.fromisoformat,
    "tm": dt.time.fromisoformat,
    "ts": dt.datetime.fromisoformat,
    "bo": bool,
    "n": lambda v: Decimal(f"{v:.2f}"),
}


def test_sqlite_source_types_arrive_exactly(platform, workdir, warehouse_url):
    """SQLite itself stores NaN as NULL, so a SQLite source has no NaN to carry; its infinities are checked."""
    path = workdir / "source.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(SQLITE_TABLE)
        cursor = conn.execute("SELECT * FROM matrix ORDER BY id")
        names = [column[0] for column in cursor.description]
        source_rows = [
            {name: None if value is None else SQLITE_READS.get(name, lambda v: v)(value) for name, value in zip(names, row, strict=True)} for row in cursor
        ]
    defs = platform.configure(sources_yaml(f"sqlite:///{path}", ["matrix"]), warehouse_url=warehouse_url)

    assert platform.materialize(defs, DAY).success

    assert source_rows[0]["r"] == 0.1 and source_rows[1]["r"] == math.inf
    assert assert_matrix(platform, defs, warehouse_url, "matrix", source_rows, SQLITE_LAKE_TYPES) is None


def test_a_mariadb_set_arrives_as_its_text(platform, mariadb, workdir):
    """SQLAlchemy turns MySQL's SET into a Python set, which has no lake type; the lake keeps the source's text."""
    database = mariadb.create_database("odd")
    with pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", database=database, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE odd (id INT, flags SET('a','b'))")
        cursor.execute("INSERT INTO odd VALUES (1, 'a,b'), (2, ''), (3, NULL)")
    defs = platform.configure(sources_yaml(mariadb.url(database), ["odd"]), warehouse_url=f"sqlite:///{workdir / 'warehouse.db'}")

    assert platform.materialize(defs, DAY).success

    schema, rows = lake_rows(platform, defs, "odd")
    assert schema["flags"] == pl.String and [row["flags"] for row in rows] == ["a,b", "", None]


def test_a_value_without_a_lake_type_fails_naming_the_source_and_column():
    """A driver value polars can only hold as a Python object (here a set) would crash the Parquet writer unnamed."""

    class Source:
        name = "odd"

    with pytest.raises(SourceTypeError, match=r"source 'odd', column 'flags': the driver returns set values.*fix:"):
        _checked_frame(Source, [(1, {"a", "b"})], ["id", "flags"], {})
    with pytest.raises(SourceTypeError, match=r"source 'odd', column 'n': .*fix:"):
        _checked_frame(Source, [(1, "x")], ["id", "n"], {"n": pl.Int64()})


@pytest.mark.parametrize("url", ["mssql+pyodbc://etl:x@sql.example/w?driver=d", "mssql+mssqlpython://etl:x@sql.example/w"])
@pytest.mark.parametrize(("values", "named"), [([1.5, math.nan], "NaN"), ([math.inf, 1.0], "±Infinity"), ([-math.inf], "±Infinity")])
def test_sql_server_refuses_nan_and_infinities_naming_the_column(values, named, url):
    """No SQL Server runs here (its float has neither NaN nor infinities): the driver is the recording fake of
    tsql_driver.py, and no row may reach it, by parameter array or by bulk copy."""
    server = tsql_driver.Server()
    engine = sa.create_engine(url, module=tsql_driver.module(server))
    frame = pl.LazyFrame({"id": list(range(len(values))), "value": values, "_source_file": ["f"] * len(values)})

    with pytest.raises(WarehouseTypeError, match=rf"table dw.readings, column 'value': {named} cannot be stored in SQL Server.*fix:"):
        load_partition(engine, "dw", "readings", DAY, frame)
    assert not [entry for entry in server.sent if entry[0] in ("executemany", "bulkcopy_arrow")]
    assert not [entry for entry in server.sent if entry[0] == "execute" and entry[1].startswith("INSERT INTO [dw].[readings]")]
    # The day's own value, not a server without bulk load: no second try by parameter arrays.
    assert not [entry for entry in server.sent if entry[0] == "execute" and entry[1].startswith("TRUNCATE")]


def test_nan_in_a_declared_numeric_fails_the_extract_naming_the_column(platform, pg_source, workdir):
    """PostgreSQL allows NaN in numeric(p,s); a Decimal cannot hold it, and it must not become NULL."""
    with psycopg.connect(host="127.0.0.1", port=pg_source["port"], user="postgres", dbname=pg_source["database"], autocommit=True) as conn:
        conn.execute("CREATE TABLE odd_numeric (id integer, amount numeric(10,2)); INSERT INTO odd_numeric VALUES (1, 1.5), (2, 'NaN')")
    defs = platform.configure(sources_yaml(pg_source["connection"], ["odd_numeric"]), warehouse_url=f"sqlite:///{workdir / 'warehouse.db'}")

    result = platform.materialize(defs, DAY, raise_on_error=False)

    assert not result.success
    failure = str(next(e for e in result.all_events if e.is_step_failure).step_failure_data.error)
    assert "source 'odd_numeric', column 'amount': values ['NaN'] do not fit Decimal(precision=10, scale=2)" in failure and "fix:" in failure


def test_a_mariadb_query_source_types_decimals_and_time_from_the_result_not_the_values(platform, mariadb, workdir):
    database = mariadb.create_database("q")
    with pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", database=database, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE m (id INT, d12 DECIMAL(12,2), d65 DECIMAL(65,20), tm TIME(6), `rate%` INT)")
        cursor.execute(f"INSERT INTO m VALUES (1, 1.10, {BIG}.5, '-838:59:59', 5), (2, NULL, NULL, NULL, NULL)")
    query = "SELECT id, d12, d65, tm, `rate%`, 7 % 3 AS modulo, 'a%b' AS `pct%` FROM m"
    defs = platform.configure(query_yaml(mariadb.url(database), query), warehouse_url=f"sqlite:///{workdir / 'warehouse.db'}")

    assert platform.materialize(defs, DAY).success

    schema, rows = lake_rows(platform, defs, "q")
    assert (schema["d12"], schema["d65"], schema["tm"]) == (pl.Decimal(13, 2), pl.String, pl.String)
    assert [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows] == [
        {"id": 1, "d12": Decimal("1.10"), "d65": f"{BIG}.50000000000000000000", "tm": "-838:59:59", "rate%": 5, "modulo": 1, "pct%": "a%b"},
        {"id": 2, "d12": None, "d65": None, "tm": None, "rate%": None, "modulo": 1, "pct%": "a%b"},
    ]


@pytest.mark.parametrize(
    ("held", "lake", "fits"),
    [
        (sa.Integer(), pl.Int64, True),
        (sa.BigInteger(), pl.Int32, True),
        (sa.Numeric(20, 0), pl.UInt64, True),
        (sa.Numeric(30, 2), pl.Decimal(30, 2), True),
        (sa.Text(), pl.Decimal(30, 2), True),
        (sa.Text(), pl.Null, True),
        (sa.Integer(), pl.String, False),
        (sa.Text(), pl.Int64, False),
        (sa.Numeric(12, 2), pl.Float64, False),
        (sa.DateTime(), pl.Date, False),
    ],
)
def test_a_warehouse_column_takes_only_values_of_its_kind(held, lake, fits):
    """Tables made earlier (by this platform or another version of it) are checked against the day's lake schema."""
    table = sa.Table("t", sa.MetaData(), sa.Column("c", held))
    schema = pl.Schema({"c": lake})
    if fits:
        check_column_types(table, schema, sqlite_dialect.dialect())
    else:
        with pytest.raises(WarehouseTypeError, match=r"table t, column 'c': the lake now has .*fix:"):
            check_column_types(table, schema, sqlite_dialect.dialect())


def test_a_nul_character_fails_a_postgresql_load_naming_the_column_and_the_warehouse_keeps_its_day(platform, postgres, workdir):
    """SQLite (like files and APIs) can hold U+0000 in text; PostgreSQL's text cannot, and its raw COPY error named no source."""
    with sqlite3.connect(workdir / "source.db") as conn:
        conn.execute('CREATE TABLE notes (id INTEGER, "Note" TEXT)')
        conn.executemany("INSERT INTO notes VALUES (?, ?)", [(1, "ok"), (2, "a\x00b")])
    warehouse = postgres.url(postgres.create_database("warehouse"))
    defs = platform.configure(sources_yaml(f"sqlite:///{workdir / 'source.db'}", ["notes"]), warehouse_url=warehouse)
    with sqlite3.connect(workdir / "source.db") as conn:
        conn.execute("DELETE FROM notes WHERE id = 2")
    assert platform.materialize(defs, DAY).success
    with sqlite3.connect(workdir / "source.db") as conn:
        conn.execute("INSERT INTO notes VALUES (2, ?)", ("a\x00b",))

    result = platform.materialize(defs, DAY, raise_on_error=False)

    assert not result.success
    failure = str(next(e for e in result.all_events if e.is_step_failure).step_failure_data.error)
    assert f"source 'notes', {DAY}:" in failure and "column Note" in failure and "NUL" in failure and "fix:" in failure
    assert platform.query(defs, 'SELECT id, "Note" FROM dw.notes') == [(1, "ok")]
