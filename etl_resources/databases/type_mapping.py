"""Types between polars (Parquet) and SQLAlchemy (the databases), both ways, in one place."""

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from etl_resources.sources.sql.dialects import polars_dtype

SQLITE_EXACT_DIGITS = 15


def sql_type(dtype: pl.DataType) -> sa.types.TypeEngine:
    """One mapping for every dialect, with T-SQL variants pinned so SQL Server never gets NTEXT, IMAGE or DATETIME."""
    if dtype == pl.Boolean:
        return sa.Boolean()
    if dtype in (pl.Int8, pl.Int16, pl.UInt8):
        return sa.SmallInteger()
    if dtype in (pl.Int32, pl.UInt16):
        return sa.Integer()
    if dtype == pl.UInt64:
        return _numeric(20, 0)  # up to 18446744073709551615, past BIGINT
    if dtype.is_integer():
        return sa.BigInteger()
    if dtype == pl.Float32:
        return sa.Float(24)
    if dtype.is_float():
        return sa.Double()
    if isinstance(dtype, pl.Decimal):
        return _numeric(dtype.precision, dtype.scale)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return sa.DateTime(timezone=True).with_variant(mssql.DATETIMEOFFSET(), "mssql")
        return sa.DateTime().with_variant(mssql.DATETIME2(), "mssql")
    if dtype == pl.Date:
        return sa.Date().with_variant(mssql.DATE(), "mssql")
    if dtype == pl.Time:
        return sa.Time().with_variant(mssql.TIME(), "mssql")
    if dtype == pl.Binary:
        return sa.LargeBinary().with_variant(mssql.VARBINARY("max"), "mssql")
    return sa.UnicodeText().with_variant(mssql.NVARCHAR(), "mssql")


# SQL Server's limit for a nonclustered index key; NVARCHAR(max) cannot be a key at all. 450 characters
# (900 bytes) also fits the clustered limit, should a DBA make the keys the primary key.
MSSQL_INDEX_KEY_BYTES = 1700
MSSQL_KEY_CHARACTERS = 450
MSSQL_FIXED_KEY_BYTES = 17  # the widest fixed-size key type, NUMERIC(38)


def key_sql_type(dtype: pl.DataType, key_dtypes: list[pl.DataType]) -> sa.types.TypeEngine:
    """A merge key's type: `sql_type`, except that text and bytes get a length on SQL Server, split so that
    all keys together fit one index key."""
    base = sql_type(dtype)
    bounded = [d for d in key_dtypes if isinstance(sql_type(d), (sa.UnicodeText, sa.LargeBinary))]
    if dtype not in bounded:
        return base
    room = MSSQL_INDEX_KEY_BYTES - MSSQL_FIXED_KEY_BYTES * (len(key_dtypes) - len(bounded))
    characters = max(1, min(MSSQL_KEY_CHARACTERS, room // (2 * len(bounded))))
    variant = mssql.VARBINARY(2 * characters) if isinstance(base, sa.LargeBinary) else mssql.NVARCHAR(characters)
    return (sa.LargeBinary() if isinstance(base, sa.LargeBinary) else sa.UnicodeText()).with_variant(variant, "mssql")


def _numeric(precision: int, scale: int) -> sa.types.TypeEngine:
    """SQLite keeps a NUMERIC value as an 8-byte float, exact to 15 digits: wider decimals go in a TEXT column as
    their exact digits."""
    numeric = sa.Numeric(precision, scale)
    return numeric if precision <= SQLITE_EXACT_DIGITS else numeric.with_variant(sa.Text(), "sqlite")


class WarehouseTypeError(ValueError):
    """A value or a column type the warehouse table cannot hold exactly."""


def _kind(dtype: pl.DataType | None) -> str | None:
    if dtype is None:
        return None
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "float"
    if isinstance(dtype, pl.Decimal):
        return "decimal"
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    return str(dtype.base_type()).lower()


def check_column_types(table: sa.Table, frame_schema: pl.Schema, dialect: sa.Dialect) -> None:
    """Refuse a day whose column changed its kind (say int to text) since the table was made: SQLite would store
    'abc' in an INTEGER column without a word, other warehouses fail mid-load on the first odd value."""
    for name, dtype in frame_schema.items():
        if name not in table.columns or dtype == pl.Null:
            continue
        held = polars_dtype(table.c[name].type, dialect.name)
        planned = sql_type(dtype)
        # The kind this dialect stores the lake type as: SQLite keeps wide decimals as TEXT.
        stored = _kind(polars_dtype(planned.dialect_impl(dialect), dialect.name))
        new, old = _kind(dtype), _kind(held)
        if new is None or old is None or old in (new, stored) or (new == "integer" and old == "decimal"):
            continue
        raise WarehouseTypeError(
            f"table {table.fullname}, column '{name}': the lake now has {dtype}, the warehouse column is {table.c[name].type} ({held}) "
            f"(fix: change the column's type in the source back, or ALTER the warehouse column to {sql_type(dtype).compile(dialect=dialect)} "
            "and load the day again)"
        )


# SQLite stores NaN as NULL but keeps infinities; SQL Server's float has neither. PostgreSQL keeps all three.
UNSTORABLE_INFINITY = {"sqlite": False, "mssql": True}
WAREHOUSE_NAMES = {"sqlite": "SQLite", "mssql": "SQL Server"}


def check_floats(table: sa.Table, batch: pl.DataFrame, dialect: str) -> None:
    """Fail naming the column when a float the warehouse cannot hold is in the batch, instead of losing it."""
    floats = [name for name, dtype in batch.schema.items() if dtype.is_float()]
    if dialect not in UNSTORABLE_INFINITY or not floats:
        return
    checks = [(name, "NaN", pl.col(name).is_nan().any()) for name in floats]
    if UNSTORABLE_INFINITY[dialect]:
        checks += [(name, "±Infinity", pl.col(name).is_infinite().any()) for name in floats]
    hits = batch.select(check.alias(str(i)) for i, (_, _, check) in enumerate(checks)).row(0)
    bad = next(((name, value) for (name, value, _), hit in zip(checks, hits, strict=True) if hit), None)
    if bad:
        raise WarehouseTypeError(
            f"table {table.fullname}, column '{bad[0]}': {bad[1]} cannot be stored in {WAREHOUSE_NAMES[dialect]} "
            "(fix: load into PostgreSQL, or map the value to NULL in the source's query if that is what it means)"
        )


def sqlite_exact(table: sa.Table, batch: pl.DataFrame) -> tuple[sa.Table, pl.DataFrame]:
    """SQLite cannot hold NaN (it stores NULL) and SQLAlchemy binds its decimals as floats. NaN fails naming the
    column (check_floats); decimals and UInt64 are bound as their exact text, which a NUMERIC column keeps as a number when
    that is lossless (up to 15 digits) and as the text otherwise."""
    check_floats(table, batch, "sqlite")
    exact = [name for name, dtype in batch.schema.items() if isinstance(dtype, pl.Decimal) or dtype == pl.UInt64]
    if not exact:
        return table, batch
    binding = sa.Table(table.name, sa.MetaData(), *(sa.Column(c.name, sa.Text() if c.name in exact else c.type) for c in table.columns), schema=table.schema)
    return binding, batch.with_columns(pl.col(exact).cast(pl.String))
