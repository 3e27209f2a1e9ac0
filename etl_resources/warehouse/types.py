"""Warehouse column types from polars (Parquet) types, and the checks that a day's values and types fit the table.

One type per lake type, with each warehouse's own type as a variant (see `dialects.typed`), so a table defined
once compiles to the right DDL on every warehouse."""

import polars as pl
import sqlalchemy as sa

from etl_resources.warehouse.dialects import BINARY, DATE, TEXT, TIME, TIMESTAMP, TIMESTAMP_TZ, WarehouseDialect, all_dialects, for_dialect, typed


class WarehouseTypeError(ValueError):
    """A value or a column type the warehouse table cannot hold exactly."""


def sql_type(dtype: pl.DataType) -> sa.types.TypeEngine:
    """One mapping for every dialect, with each warehouse's variants pinned (SQL Server never gets NTEXT, IMAGE or DATETIME)."""
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
        return typed(TIMESTAMP_TZ, sa.DateTime(timezone=True)) if dtype.time_zone is not None else typed(TIMESTAMP, sa.DateTime())
    if dtype == pl.Date:
        return typed(DATE, sa.Date())
    if dtype == pl.Time:
        return typed(TIME, sa.Time())
    if dtype == pl.Binary:
        return typed(BINARY, sa.LargeBinary())
    return typed(TEXT, sa.UnicodeText())


def _numeric(precision: int, scale: int) -> sa.types.TypeEngine:
    """A warehouse that keeps NUMERIC values inexactly past some digits (SQLite: 15) gets wider decimals in a TEXT column as their exact digits."""
    numeric = sa.Numeric(precision, scale)
    for dialect in all_dialects():
        if dialect.exact_digits is not None and precision > dialect.exact_digits:
            numeric = numeric.with_variant(sa.Text(), dialect.name)
    return numeric


def key_sql_type(dtype: pl.DataType, key_dtypes: list[pl.DataType]) -> sa.types.TypeEngine:
    """A merge key's type: `sql_type`, except that text and bytes get a length where a warehouse cannot index them
    unbounded, split so that all keys together fit one index key."""
    base = sql_type(dtype)
    bounded = [d for d in key_dtypes if isinstance(sql_type(d), (sa.UnicodeText, sa.LargeBinary))]
    if dtype not in bounded:
        return base
    key = sa.LargeBinary() if isinstance(base, sa.LargeBinary) else sa.UnicodeText()
    for dialect in all_dialects():
        variant = dialect.key_type(key, len(key_dtypes), len(bounded))
        if variant is not None:
            key = key.with_variant(variant, dialect.name)
    return key


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
    warehouse = for_dialect(dialect.name)
    for name, dtype in frame_schema.items():
        if name not in table.columns or dtype == pl.Null:
            continue
        held = warehouse.read_dtype(table.c[name].type)
        planned = sql_type(dtype)
        # The kind this dialect stores the lake type as: SQLite keeps wide decimals as TEXT.
        stored = _kind(warehouse.read_dtype(planned.dialect_impl(dialect)))
        new, old = _kind(dtype), _kind(held)
        if new is None or old is None or old in (new, stored) or (new == "integer" and old == "decimal"):
            continue
        raise WarehouseTypeError(
            f"table {table.fullname}, column '{name}': the lake now has {dtype}, the warehouse column is {table.c[name].type} ({held}) "
            f"(fix: change the column's type in the source back, or ALTER the warehouse column to {sql_type(dtype).compile(dialect=dialect)} "
            "and load the day again)"
        )


def check_floats(table: sa.Table, batch: pl.DataFrame, dialect: WarehouseDialect) -> None:
    """Fail naming the column when a float the warehouse cannot hold (NaN, infinities) is in the batch, instead of losing it."""
    floats = [name for name, dtype in batch.schema.items() if dtype.is_float()]
    checks = [(name, "NaN", pl.col(name).is_nan().any()) for name in floats if not dialect.stores_nan]
    checks += [(name, "±Infinity", pl.col(name).is_infinite().any()) for name in floats if not dialect.stores_infinity]
    if not checks:
        return
    hits = batch.select(check.alias(str(i)) for i, (_, _, check) in enumerate(checks)).row(0)
    bad = next(((name, value) for (name, value, _), hit in zip(checks, hits, strict=True) if hit), None)
    if bad:
        raise WarehouseTypeError(
            f"table {table.fullname}, column '{bad[0]}': {bad[1]} cannot be stored in {dialect.display_name} "
            "(fix: load into PostgreSQL, or map the value to NULL in the source's query if that is what it means)"
        )
