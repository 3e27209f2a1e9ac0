"""The `append` and `merge` write modes, with the same meaning on PostgreSQL, SQLite and Azure SQL.

append: the day's rows are added; nothing is removed, so loading a day again adds its rows again.
merge: the day's rows are upserted on the target's `keys`: a row whose keys exist replaces that row (its
lineage included, so `_partition` says which day wrote it last), any other is inserted, and rows the day
does not mention stay. Within one day the last row of a key wins, and a row without a value for a key is
refused: no warehouse can match it, so each load would add it again. The rows go into a staging table first,
then one `INSERT … ON CONFLICT DO UPDATE` moves them, all in the load's one transaction. Azure SQL does the
same with statements of its own (dialects/mssql/load.py); each warehouse's load is its dialect's `load_day`.
"""

import datetime as dt
from collections.abc import Iterable

import polars as pl
import sqlalchemy as sa

from etl_resources.warehouse import names as warehouse_names
from etl_resources.warehouse.dialects import LoadRequest, for_dialect
from etl_resources.warehouse.schema import ensure_table, keys_index

ROW_NUMBER = "_etl_row"
INSERT_CHUNK_ROWS = 10_000


class WriteModeError(ValueError):
    pass


def insert_batches(conn: sa.Connection, table: sa.Table, batches: Iterable[pl.DataFrame]) -> None:
    warehouse = for_dialect(conn.dialect.name)
    for batch in batches:
        target, batch = warehouse.bind_batch(table, batch)
        conn.execute(target.insert(), batch.to_dicts())


def check_keys_present(table: sa.Table, partition_key: str, batch: pl.DataFrame, keys: tuple[str, ...]) -> None:
    """A merge row with a NULL key matches no row, so every load of its day would add it once more (SQL Server's
    unique index would refuse the second); fail naming the key instead."""
    if not keys:
        return
    missing = batch.select(pl.col(key).is_null().sum() for key in keys).row(0)
    bad = [(key, count) for key, count in zip(keys, missing, strict=True) if count]
    if bad:
        key, count = bad[0]
        raise WriteModeError(
            f"{table.fullname} {partition_key}: merge key '{key}' is NULL in {count} row(s) of a batch, and a row without its key cannot be "
            "merged (fix: give those rows a key in the source, filter them out in its query, or declare the key `required` in the contract "
            "so they go to the rejects)"
        )


def ensure_keys_index(conn: sa.Connection, table: sa.Table, keys: tuple[str, ...]) -> None:
    """An upsert needs a unique index on the keys; a table made before (or by hand) may lack one."""
    warehouse = for_dialect(conn.dialect.name)
    if warehouse.is_partitioned(conn, table.schema, table.name):
        raise WriteModeError(
            f"{table.fullname} is partitioned by day (made for write_mode replace_partition), so keys cannot be unique "
            "across days (fix: load into a new target table, or drop this one and let the merge create it)"
        )
    if not any(sorted(columns) == sorted(keys) for columns in unique_column_sets(conn, table)):
        warehouse.check_key_columns(conn.dialect, table, keys)
        conn.execute(sa.schema.CreateIndex(keys_index(table, keys, conn.dialect.name)))


def unique_column_sets(conn: sa.Connection, table: sa.Table) -> list[list[str]]:
    """The column sets a unique index, unique constraint or primary key holds unique over the whole table.

    SQLAlchemy's mssql dialect does not reflect unique constraints (NotImplementedError); SQL Server keeps each
    as a unique index, which `get_indexes` lists. A filtered index (`WHERE …`) is unique over some rows only."""
    inspector = sa.inspect(conn)
    sets = [
        index["column_names"]
        for index in inspector.get_indexes(table.name, schema=table.schema)
        if index["unique"] and not any(key.endswith("_where") and value is not None for key, value in index.get("dialect_options", {}).items())
    ]
    try:
        sets += [constraint["column_names"] for constraint in inspector.get_unique_constraints(table.name, schema=table.schema)]
    except NotImplementedError:
        pass
    sets.append(inspector.get_pk_constraint(table.name, schema=table.schema).get("constrained_columns") or [])
    return sets


def stage_table(conn: sa.Connection, table: sa.Table, columns: list[str]) -> sa.Table:
    """A temporary table for the day's rows, numbered in arrival order so the last row of a key can win."""
    name = warehouse_names.merge_stage(conn.dialect.name, table.name)
    stage = sa.Table(
        name, sa.MetaData(), *(sa.Column(column, table.c[column].type) for column in columns), sa.Column(ROW_NUMBER, sa.BigInteger()), prefixes=["TEMPORARY"]
    )
    stage.drop(conn, checkfirst=True)
    stage.create(conn)
    return stage


def numbered(batches: Iterable[pl.DataFrame], table: sa.Table, partition_key: str, keys: tuple[str, ...]) -> Iterable[pl.DataFrame]:
    offset = 0
    for batch in batches:
        check_keys_present(table, partition_key, batch, keys)
        yield batch.with_columns(pl.int_range(offset, offset + batch.height, dtype=pl.Int64).alias(ROW_NUMBER))
        offset += batch.height


def upsert_statement(dialect: sa.Dialect, table: sa.Table, stage: sa.Table, keys: tuple[str, ...]) -> sa.Executable:
    columns = [column.name for column in stage.columns if column.name != ROW_NUMBER]
    last_of_each_key = sa.select(sa.func.max(stage.c[ROW_NUMBER])).group_by(*(stage.c[key] for key in keys))
    latest = sa.select(*(stage.c[column] for column in columns)).where(stage.c[ROW_NUMBER].in_(last_of_each_key))
    updated = [column for column in columns if column not in keys]
    upsert_insert = for_dialect(dialect.name).upsert_insert
    if upsert_insert is not None:
        insert = upsert_insert(table).from_select(columns, latest)
        return insert.on_conflict_do_update(index_elements=list(keys), set_={column: insert.excluded[column] for column in updated})
    raise WriteModeError(f"write_mode merge is not supported on {dialect.name} (fix: use PostgreSQL, SQLite or Azure SQL, or write_mode append)")


def with_lineage(frame: pl.LazyFrame, loaded_at: dt.datetime, partition_key: str) -> pl.LazyFrame:
    return frame.with_columns(pl.lit(loaded_at).alias("_loaded_at"), pl.lit(partition_key).alias("_partition"))


def load_day(engine: sa.Engine, request: LoadRequest) -> tuple[sa.Table, list[str]]:
    """Every mode through SQLAlchemy executemany (SQLite and others; PostgreSQL's append and merge), in one transaction."""
    frame = with_lineage(request.frame, request.loaded_at, request.partition_key)
    keys = request.keys
    with engine.begin() as conn:
        replace = request.write_mode == "replace_partition"
        table, added = ensure_table(conn, request.schema, request.table, frame.collect_schema(), partitioned=replace, unique_keys=keys)
        batches = request.batches(frame, INSERT_CHUNK_ROWS)
        if replace:
            conn.execute(table.delete().where(table.c["_partition"] == request.partition_key))
            insert_batches(conn, table, batches)
        elif request.write_mode == "append":
            for_dialect(conn.dialect.name).prepare_append(conn, table, request.partition_key)
            insert_batches(conn, table, batches)
        else:
            ensure_keys_index(conn, table, keys)
            stage = stage_table(conn, table, frame.collect_schema().names())
            insert_batches(conn, stage, numbered(batches, table, request.partition_key, keys))
            conn.execute(upsert_statement(conn.dialect, table, stage, keys))
            stage.drop(conn)
    return table, added
