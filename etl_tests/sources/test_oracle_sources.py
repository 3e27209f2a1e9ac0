"""Oracle sources, compiled: no Oracle server runs here (the live tests in test_oracle_live.py need one named by
ETL_TEST_ORACLE_URL). What runs is SQLAlchemy's real oracle dialect with python-oracledb loaded as its driver:
the SELECT an incremental table or query source sends for a day, with its bind parameters; the lake type of every
common Oracle column type as SQLAlchemy reflects it; the way the driver is asked for each value (decimals never
through a float); and the frames built from the values python-oracledb returns for them."""

import datetime as dt
import decimal
from decimal import Decimal

import oracledb
import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import oracle

from etl_resources.sources.sql.dialects import polars_dtype, source_dialect
from etl_resources.sources.sql.extract import _checked_frame, partition_select
from etl_resources.sources.sql.model import SqlSource
from etl_resources.sources.sql.oracle_types import oracle_result_dtypes

DAY = (dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
NAIVE_DAY = {"start": dt.datetime(2026, 11, 1), "end": dt.datetime(2026, 11, 2)}


@pytest.fixture(scope="module")
def dialect() -> sa.Dialect:
    """The oracledb dialect as an engine makes it, driver loaded; no connection is ever opened."""
    return sa.create_engine("oracle+oracledb://etl:x@127.0.0.1:1521/?service_name=FREEPDB1").dialect


def incremental(watermark: str, table: str | None = "sales.orders", query: str | None = None) -> SqlSource:
    return SqlSource(
        name="orders",
        kind="sql",
        connection="oracle+oracledb://etl:${ORACLE_PASSWORD}@db.example:1521/?service_name=FREEPDB1",
        table=table,
        query=query,
        mode="incremental",
        watermark_column=watermark,
        start_date="2026-11-01",
        target={"schema": "dw", "table": "orders"},
    )


def orders(watermark_type: sa.types.TypeEngine) -> sa.Table:
    """The table as SQLAlchemy reflects it from Oracle: case-insensitive names in lower case, the others as written."""
    return sa.Table(
        "orders",
        sa.MetaData(),
        sa.Column("id", oracle.NUMBER(10, 0)),
        sa.Column("MixedCase", oracle.VARCHAR2(10)),
        sa.Column("rate%", oracle.NUMBER(5, 2)),
        sa.Column("it's", oracle.NVARCHAR2(5)),
        sa.Column("changed_at", watermark_type),
        schema="sales",
    )


def compiled(statement: sa.Select, dialect: sa.Dialect) -> tuple[str, dict]:
    sql = statement.compile(dialect=dialect)
    return " ".join(str(sql).split()), sql.params


@pytest.mark.parametrize(
    ("watermark_type", "read"),
    [
        (oracle.DATE(), "sales.orders.changed_at"),
        (oracle.TIMESTAMP(), "sales.orders.changed_at"),
        (oracle.TIMESTAMP(local_timezone=True), "sales.orders.changed_at"),
        (oracle.TIMESTAMP(timezone=True), "sys_extract_utc(sales.orders.changed_at) AS changed_at"),
    ],
    ids=["DATE", "TIMESTAMP", "TIMESTAMP WITH LOCAL TIME ZONE", "TIMESTAMP WITH TIME ZONE"],
)
def test_an_incremental_table_source_binds_the_day_as_utc_wall_clock_times(dialect, watermark_type, read):
    """Oracle DATE has a time of day and no zone; python-oracledb drops a bound datetime's zone, and the session
    runs in UTC, so every watermark type is bound as the day's UTC midnights. A zoned column is compared as itself
    (its index stays usable) and read as SYS_EXTRACT_UTC of itself, since the driver returns it without its zone."""
    statement, _ = partition_select(incremental("changed_at"), orders(watermark_type), "oracle", DAY)

    sql, params = compiled(statement, dialect)

    assert sql == (
        'SELECT sales.orders.id AS id, sales.orders."MixedCase", sales.orders."rate%" AS "rate%", '
        f'sales.orders."it\'s", {read} FROM sales.orders '
        "WHERE sales.orders.changed_at >= :changed_at_1 AND sales.orders.changed_at < :changed_at_2"
    )
    assert params == {"changed_at_1": NAIVE_DAY["start"], "changed_at_2": NAIVE_DAY["end"]}
    assert source_dialect("oracle").session == ("ALTER SESSION SET TIME_ZONE = 'UTC'",)


def test_an_incremental_query_source_keeps_its_text_and_binds_the_day(dialect):
    """`%` is no marker for python-oracledb's named parameters: the query and its aliases keep it as written."""
    query = """SELECT id, 'a%b' AS "rate%", MOD(7, 3) AS m, changed_at FROM sales.orders WHERE note LIKE 'x%'"""
    statement, known = partition_select(incremental("changed_at", table=None, query=query), None, "oracle", DAY)

    sql, params = compiled(statement, dialect)

    assert sql == f"SELECT * FROM ({query}) src WHERE src.changed_at >= :changed_at_1 AND src.changed_at < :changed_at_2"
    assert params == {"changed_at_1": NAIVE_DAY["start"], "changed_at_2": NAIVE_DAY["end"]}
    assert known == {}


ORACLE_TYPES = [
    (oracle.NUMBER(12, 2), pl.Decimal(12, 2)),
    (oracle.NUMBER(38, 10), pl.Decimal(38, 10)),
    (oracle.NUMBER(10, 0), pl.Decimal(10, 0)),
    (oracle.NUMBER(None, 2), pl.Decimal(38, 2)),
    (oracle.NUMBER(5, -2), pl.Decimal(7, 0)),
    (oracle.NUMBER(3, 5), pl.Decimal(5, 5)),
    (oracle.NUMBER(38, -5), pl.String),
    (oracle.NUMBER(), pl.String),
    (sa.INTEGER(), pl.Decimal(38, 0)),
    (oracle.BINARY_FLOAT(), pl.Float32),
    (oracle.BINARY_DOUBLE(), pl.Float64),
    (oracle.FLOAT(binary_precision=20), pl.String),
    (sa.DOUBLE_PRECISION(), pl.String),
    (sa.REAL(), pl.String),
    (oracle.VARCHAR2(40), pl.String),
    (oracle.NVARCHAR2(40), pl.String),
    (sa.CHAR(5), pl.String),
    (oracle.NCHAR(5), pl.String),
    (sa.CLOB(), pl.String),
    (oracle.NCLOB(), pl.String),
    (oracle.LONG(), pl.String),
    (oracle.RAW(16), pl.Binary),
    (sa.BLOB(), pl.Binary),
    (oracle.DATE(), pl.Datetime("us")),
    (oracle.TIMESTAMP(), pl.Datetime("us")),
    (oracle.TIMESTAMP(timezone=True), pl.Datetime("us", "UTC")),
    (oracle.TIMESTAMP(local_timezone=True), pl.Datetime("us", "UTC")),
    (oracle.INTERVAL(day_precision=9, second_precision=6), pl.String),
    (oracle.BOOLEAN(), pl.Boolean),
]


@pytest.mark.parametrize(("column_type", "lake"), ORACLE_TYPES, ids=[repr(t) for t, _ in ORACLE_TYPES])
def test_each_oracle_column_type_has_its_exact_lake_type(column_type, lake):
    """The types as Oracle's reflection builds them (NUMBER(*,0) is INTEGER; FLOAT(126) DOUBLE PRECISION, FLOAT(63)
    REAL): Oracle's FLOAT(b) is a decimal NUMBER, and a NUMBER without precision holds any decimal, so both are the
    exact digits, never a float."""
    assert polars_dtype(column_type, "oracle") == lake


def output_type(dialect: sa.Dialect, column_type: sa.types.TypeEngine, precision: int, scale: int):
    """What the column's SQLAlchemy type asks python-oracledb to fetch a NUMBER of this precision and scale as."""

    class Cursor:
        arraysize = 100

        def var(self, type_, size, arraysize, outconverter=None):
            return type_

    handler = column_type.dialect_impl(dialect)._cx_oracle_outputtypehandler(dialect)
    return handler(Cursor(), "c", oracledb.DB_TYPE_NUMBER, 22, precision, scale)


@pytest.mark.parametrize(
    ("column_type", "precision", "scale"),
    [(oracle.NUMBER(), 0, -127), (oracle.NUMBER(10, 0), 10, 0), (oracle.NUMBER(12, 2), 12, 2), (sa.INTEGER(), 0, 0), (sa.DOUBLE_PRECISION(), 126, -127)],
    ids=["NUMBER", "NUMBER(10)", "NUMBER(12,2)", "INTEGER", "FLOAT(126)"],
)
def test_every_oracle_number_is_fetched_as_a_decimal(dialect, column_type, precision, scale):
    """As reflected, a NUMBER without precision or a FLOAT would be fetched as a binary float (a different value);
    the SELECT reads each decimal column as a Decimal instead."""
    table = sa.Table("t", sa.MetaData(), sa.Column("c", column_type))
    statement, _ = partition_select(incremental("c", table="t").model_copy(update={"mode": "snapshot"}), table, "oracle", None)
    read = statement.selected_columns[0]

    assert output_type(dialect, read.type, precision, scale) is decimal.Decimal
    if isinstance(column_type, oracle.NUMBER) and column_type.precision is None:
        assert output_type(dialect, column_type, precision, scale) is oracledb.NATIVE_FLOAT


def test_values_as_python_oracledb_returns_them_arrive_exactly():
    """The values the driver hands over for the SELECT above (Decimals for numbers, a timedelta for an interval,
    SYS_EXTRACT_UTC's naive UTC time for a zoned timestamp), built into a frame with the types of the columns."""
    columns = {
        "n": oracle.NUMBER(),
        "n12": oracle.NUMBER(12, 2),
        "i": sa.INTEGER(),
        "fl": oracle.FLOAT(binary_precision=126),
        "bf": oracle.BINARY_FLOAT(),
        "iv": oracle.INTERVAL(day_precision=9, second_precision=6),
        "tstz": oracle.TIMESTAMP(timezone=True),
        "d": oracle.DATE(),
        "r": oracle.RAW(4),
    }
    known = {name: polars_dtype(column_type, "oracle") for name, column_type in columns.items()}
    big = Decimal("1234567890123456789012345678901234567.8")
    rows = [
        (
            big,
            Decimal("-9999999999.99"),
            Decimal(10**37),
            Decimal("0.1"),
            1.5,
            dt.timedelta(days=-1, microseconds=1),
            dt.datetime(2026, 11, 1, 5),
            dt.datetime(2026, 11, 1, 23, 59, 59),
            b"\x00\xff",
        ),
        (
            Decimal("1E-130"),
            Decimal(0),
            Decimal(-1),
            Decimal("1E+125"),
            -3.0,
            dt.timedelta(days=2, hours=3),
            dt.datetime(1, 1, 1),
            dt.datetime(9999, 12, 31),
            b"",
        ),
        (None,) * len(columns),
    ]

    frame = _checked_frame(incremental("d"), rows, list(columns), known)

    assert frame.schema == pl.Schema(known)
    assert frame.to_dicts() == [
        {
            "n": str(big),
            "n12": Decimal("-9999999999.99"),
            "i": Decimal(10**37),
            "fl": "0.1",
            "bf": 1.5,
            "iv": "-23:59:59.999999",
            "tstz": dt.datetime(2026, 11, 1, 5, tzinfo=dt.UTC),
            "d": dt.datetime(2026, 11, 1, 23, 59, 59),
            "r": b"\x00\xff",
        },
        {
            "n": "1E-130",
            "n12": Decimal("0"),
            "i": Decimal("-1"),
            "fl": "1E+125",
            "bf": -3.0,
            "iv": "51:00:00",
            "tstz": dt.datetime(1, 1, 1, tzinfo=dt.UTC),
            "d": dt.datetime(9999, 12, 31),
            "r": b"",
        },
        dict.fromkeys(columns),
    ]


def test_a_query_types_its_numbers_from_the_description():
    """python-oracledb's description: (name, type, display size, internal size, precision, scale, nullable). An
    unconstrained NUMBER (scale -127) or one of a subquery (precision 0) arrives as int or Decimal: exact text."""
    description = [
        ("ID", oracledb.DB_TYPE_NUMBER, 11, None, 10, 0, False),
        ("AMOUNT", oracledb.DB_TYPE_NUMBER, 14, None, 12, 2, True),
        ("ANY_NUMBER", oracledb.DB_TYPE_NUMBER, 127, None, 0, -127, True),
        ("MOD(7,3)", oracledb.DB_TYPE_NUMBER, 127, None, 0, 0, True),
        ("F", oracledb.DB_TYPE_NUMBER, 127, None, 126, -127, True),
        ("NOTE", oracledb.DB_TYPE_VARCHAR, 40, 160, None, None, True),
    ]
    names = ["id", "amount", "any_number", "mod(7,3)", "f", "note"]

    dtypes = oracle_result_dtypes(names, description)

    assert dtypes == {"id": pl.Decimal(10, 0), "amount": pl.Decimal(12, 2), "any_number": pl.String, "mod(7,3)": pl.String, "f": pl.String}
    frame = _checked_frame(incremental("id"), [(1, Decimal("1.50"), 5, 1, Decimal("0.5"), "x")], names, dtypes)
    assert frame.row(0) == (Decimal(1), Decimal("1.50"), "5", "1", "0.5", "x")
