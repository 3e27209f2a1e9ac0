"""SQLite as the warehouse: one file, no schemas, every write mode through SQLAlchemy (write_modes.load_day)."""

from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from etl_resources.warehouse.dialects import IDENTITY, WarehouseDialect
from etl_resources.warehouse.names import Naming
from etl_resources.warehouse.types import check_floats
from etl_resources.warehouse.write_modes import load_day

# SQLite keeps a NUMERIC value as an 8-byte float, exact to 15 digits.
SQLITE_EXACT_DIGITS = 15


def exact_batch(table: sa.Table, batch: pl.DataFrame) -> tuple[sa.Table, pl.DataFrame]:
    """SQLite cannot hold NaN (it stores NULL) and SQLAlchemy binds its decimals as floats. NaN fails naming the
    column (check_floats); decimals and UInt64 are bound as their exact text, which a NUMERIC column keeps as a number when
    that is lossless (up to 15 digits) and as the text otherwise."""
    check_floats(table, batch, DIALECT)
    exact = [name for name, dtype in batch.schema.items() if isinstance(dtype, pl.Decimal) or dtype == pl.UInt64]
    if not exact:
        return table, batch
    binding = sa.Table(table.name, sa.MetaData(), *(sa.Column(c.name, sa.Text() if c.name in exact else c.type) for c in table.columns), schema=table.schema)
    return binding, batch.with_columns(pl.col(exact).cast(pl.String))


def make_folder(url: sa.URL) -> None:
    if url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


DIALECT = WarehouseDialect(
    name="sqlite",
    display_name="SQLite",
    naming=Naming("sqlite", folds_case="ascii", has_schemas=False),
    load_day=load_day,
    # Only an INTEGER PRIMARY KEY autoincrements.
    types={IDENTITY: sa.Integer()},
    exact_digits=SQLITE_EXACT_DIGITS,
    upsert_insert=sqlite.insert,
    bind_batch=exact_batch,
    stores_nan=False,
    prepare_url=make_folder,
)
