"""What differs from one warehouse to the next, and the one switch from a SQLAlchemy backend name to it.

Each warehouse is a module here with a `DIALECT` (a `WarehouseDialect`) and an entry in `MODULES`; the generic
modules (resource, schema, write_modes, names, types) ask it instead of comparing dialect names. The modules are
imported on first use: each builds its load on those generic modules, which import this one.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl
import sqlalchemy as sa

from etl_resources.sources.sql.dialects import polars_dtype

if TYPE_CHECKING:
    from etl_resources.warehouse.names import Naming

# In the order target names are checked when the warehouse is not known.
MODULES = {
    "postgresql": "etl_resources.warehouse.dialects.postgresql.dialect",
    "mssql": "etl_resources.warehouse.dialects.mssql.dialect",
    "sqlite": "etl_resources.warehouse.dialects.sqlite",
}
SUPPORTED = tuple(MODULES)

# The roles of column types some warehouse has its own type for (`WarehouseDialect.types`).
TIMESTAMP_TZ, TIMESTAMP, DATE, TIME, BINARY, TEXT = "timestamp_tz", "timestamp", "date", "time", "binary", "text"
# Lineage text (file, partition): bounded where a server needs the bound to index it.
LINEAGE_TEXT = "lineage_text"
# An autoincrementing key (the audit log's id).
IDENTITY = "identity"


class UnsupportedWarehouseError(ValueError):
    pass


@dataclass(frozen=True)
class LoadRequest:
    """One day's load as a dialect gets it: the target, the day's frame (with `_source_file`), and how its batches are counted.

    `batches(frame, rows)` yields the frame's batches, counting rows and `files` from zero each time it is called,
    so a load that starts over (a refused bulk copy) counts once."""

    schema: str | None
    table: str
    partition_key: str
    frame: pl.LazyFrame
    write_mode: str
    keys: tuple[str, ...]
    loaded_at: dt.datetime
    batches: Callable[[pl.LazyFrame, int], Iterator[pl.DataFrame]]
    files: set[str]
    log: logging.Logger | None = None


LoadDay = Callable[[sa.Engine, LoadRequest], tuple[sa.Table, list[str]]]


def _nothing(*args) -> None:
    return None


def _never(*args) -> bool:
    return False


def _as_is(table: sa.Table, batch: pl.DataFrame) -> tuple[sa.Table, pl.DataFrame]:
    return table, batch


@dataclass(frozen=True)
class WarehouseDialect:
    """One warehouse: its names, DDL, types, float limits and how it loads a day."""

    name: str
    display_name: str
    naming: Naming
    load_day: LoadDay
    # Role -> this warehouse's type where SQLAlchemy's generic one is not what it should hold.
    types: Mapping[str, sa.types.TypeEngine] = field(default_factory=dict)
    # A bounded text or bytes type for a merge key, when unbounded ones cannot be indexed: (generic type, keys, bounded keys) -> type.
    key_type: Callable[[sa.types.TypeEngine, int, int], sa.types.TypeEngine | None] = _nothing
    # The widest decimal a NUMERIC column holds exactly; wider ones are kept as their text.
    exact_digits: int | None = None
    add_column: str = "ADD COLUMN"
    # Table options that partition a new replace_partition table by day; none: a plain table with an index on `_partition`.
    partition_by: Mapping[str, str] = field(default_factory=dict)
    is_partitioned: Callable[[sa.Connection, str | None, str], bool] = _never
    # What an append needs first (a day-partitioned table's partition).
    prepare_append: Callable[[sa.Connection, sa.Table, str], None] = _nothing
    # Refuse merge keys the warehouse cannot put in a unique index.
    check_key_columns: Callable[[sa.Dialect, sa.Table, tuple[str, ...]], None] = _nothing
    # The INSERT whose `on_conflict_do_update` upserts; None where the merge is the dialect's own (or missing).
    upsert_insert: Callable[[sa.Table], sa.Insert] | None = None
    # A batch and the table to bind it to, for SQLAlchemy's executemany.
    bind_batch: Callable[[sa.Table, pl.DataFrame], tuple[sa.Table, pl.DataFrame]] = _as_is
    stores_nan: bool = True
    stores_infinity: bool = True
    # What the warehouse needs before its engine connects (SQLite: the file's folder).
    prepare_url: Callable[[sa.URL], None] = _nothing

    def read_dtype(self, column_type: sa.types.TypeEngine) -> pl.DataType | None:
        """The polars type a warehouse column holds."""
        return polars_dtype(column_type, self.name)


def for_dialect(name: str) -> WarehouseDialect:
    """The warehouse of SQLAlchemy backend `name`."""
    module = MODULES.get(name)
    if module is None:
        raise UnsupportedWarehouseError(
            f"the warehouse URL's dialect {name!r} is not a supported warehouse; supported: {', '.join(SUPPORTED)} "
            "(fix: point ETL_WAREHOUSE_URL, or etl-config validate --warehouse-url, at a PostgreSQL, Azure SQL / SQL Server or SQLite database)"
        )
    return importlib.import_module(module).DIALECT


def all_dialects() -> list[WarehouseDialect]:
    return [for_dialect(name) for name in SUPPORTED]


def typed(role: str, generic: sa.types.TypeEngine) -> sa.types.TypeEngine:
    """`generic`, with each warehouse's own type for `role` as its variant: one table definition serves every warehouse."""
    for dialect in all_dialects():
        if role in dialect.types:
            generic = generic.with_variant(dialect.types[role], dialect.name)
    return generic
