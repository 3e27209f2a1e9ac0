"""The `append` and `merge` write modes, with the same meaning on PostgreSQL, SQLite and Azure SQL.

append: the day's rows are added; nothing is removed, so loading a day again adds its rows again.
merge: the day's rows are upserted on the target's `keys`: a row whose keys exist replaces that row (its
lineage included, so `_partition` says which day wrote it last), any other is inserted, and rows the day
does not mention stay. Within one day the last row of a key wins. The rows go into a staging table first,
then one `INSERT … ON CONFLICT DO UPDATE` (PostgreSQL, SQLite) or `MERGE` (Azure SQL) moves them, all in
the load's one transaction.
"""

from collections.abc import Iterable

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from etl_resources import warehouse_names
from etl_resources.mssql_load import fast_insert, uses_fast_executemany
from etl_resources.type_mapping import check_floats, sqlite_exact
from etl_resources.partition_swap import partition_table_name
from etl_resources.warehouse_schema import is_partitioned, keys_index

ROW_NUMBER = "_etl_row"


class WriteModeError(ValueError):
    pass


def insert_batches(conn: sa.Connection, table: sa.Table, batches: Iterable[pl.DataFrame]) -> None:
    if uses_fast_executemany(conn.dialect):
        fast_insert(conn, table, _floats_checked(table, batches, conn.dialect.name))
        return
    for batch in batches:
        target = table
        if conn.dialect.name == "sqlite":
            target, batch = sqlite_exact(table, batch)
        conn.execute(target.insert(), batch.to_dicts())


def _floats_checked(table: sa.Table, batches: Iterable[pl.DataFrame], dialect: str) -> Iterable[pl.DataFrame]:
    for batch in batches:
        check_floats(table, batch, dialect)
        yield batch


def prepare_append(conn: sa.Connection, table: sa.Table, partition_key: str) -> None:
    """A day-partitioned PostgreSQL table (made for replace_partition) needs the day's partition to exist."""
    if conn.dialect.name == "postgresql" and is_partitioned(conn, table.schema, table.name):
        preparer = conn.dialect.identifier_preparer
        partition = preparer.format_table(sa.Table(partition_table_name(table.name, partition_key), sa.MetaData(), schema=table.schema))
        literal = sa.literal(partition_key, sa.Text()).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {preparer.format_table(table)} FOR VALUES IN ({literal})"))


def ensure_keys_index(conn: sa.Connection, table: sa.Table, keys: tuple[str, ...]) -> None:
    """An upsert needs a unique index on the keys; a table made before (or by hand) may lack one."""
    if conn.dialect.name == "postgresql" and is_partitioned(conn, table.schema, table.name):
        raise WriteModeError(
            f"{table.fullname} is partitioned by day (made for write_mode replace_partition), so keys cannot be unique "
            "across days (fix: load into a new target table, or drop this one and let the merge create it)"
        )
    inspector = sa.inspect(conn)
    indexed = [index["column_names"] for index in inspector.get_indexes(table.name, schema=table.schema) if index["unique"]]
    indexed += [constraint["column_names"] for constraint in inspector.get_unique_constraints(table.name, schema=table.schema)]
    indexed.append(inspector.get_pk_constraint(table.name, schema=table.schema).get("constrained_columns") or [])
    if not any(sorted(columns) == sorted(keys) for columns in indexed):
        conn.execute(sa.schema.CreateIndex(keys_index(table, keys, conn.dialect.name)))


def stage_table(conn: sa.Connection, table: sa.Table, columns: list[str]) -> sa.Table:
    """A temporary table for the day's rows, numbered in arrival order so the last row of a key can win."""
    name = warehouse_names.merge_stage(conn.dialect.name, table.name)
    prefixes = [] if conn.dialect.name == "mssql" else ["TEMPORARY"]
    stage = sa.Table(
        name, sa.MetaData(), *(sa.Column(column, table.c[column].type) for column in columns), sa.Column(ROW_NUMBER, sa.BigInteger()), prefixes=prefixes
    )
    stage.drop(conn, checkfirst=conn.dialect.name != "mssql")
    stage.create(conn)
    return stage


def numbered(batches: Iterable[pl.DataFrame]) -> Iterable[pl.DataFrame]:
    offset = 0
    for batch in batches:
        yield batch.with_columns(pl.int_range(offset, offset + batch.height, dtype=pl.Int64).alias(ROW_NUMBER))
        offset += batch.height


def upsert_statement(dialect: sa.Dialect, table: sa.Table, stage: sa.Table, keys: tuple[str, ...]) -> sa.Executable:
    columns = [column.name for column in stage.columns if column.name != ROW_NUMBER]
    last_of_each_key = sa.select(sa.func.max(stage.c[ROW_NUMBER])).group_by(*(stage.c[key] for key in keys))
    latest = sa.select(*(stage.c[column] for column in columns)).where(stage.c[ROW_NUMBER].in_(last_of_each_key))
    updated = [column for column in columns if column not in keys]
    if dialect.name in ("postgresql", "sqlite"):
        insert = (postgresql.insert if dialect.name == "postgresql" else sqlite.insert)(table).from_select(columns, latest)
        return insert.on_conflict_do_update(index_elements=list(keys), set_={column: insert.excluded[column] for column in updated})
    if dialect.name == "mssql":
        return warehouse_names.sql_text(_tsql_merge(dialect, table, stage, keys, columns, updated, latest))
    raise WriteModeError(f"write_mode merge is not supported on {dialect.name} (fix: use PostgreSQL, SQLite or Azure SQL, or write_mode append)")


def _tsql_merge(dialect: sa.Dialect, table: sa.Table, stage: sa.Table, keys, columns: list[str], updated: list[str], latest: sa.Select) -> str:
    quote = dialect.identifier_preparer.quote
    source = str(latest.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    matched = " AND ".join(f"target.{quote(key)} = source.{quote(key)}" for key in keys)
    assignments = ", ".join(f"target.{quote(column)} = source.{quote(column)}" for column in updated)
    names = ", ".join(quote(column) for column in columns)
    values = ", ".join(f"source.{quote(column)}" for column in columns)
    # HOLDLOCK: without it two MERGEs of the same new key can both decide to insert it.
    return (
        f"MERGE INTO {dialect.identifier_preparer.format_table(table)} WITH (HOLDLOCK) AS target USING ({source}) AS source ON {matched} "
        f"WHEN MATCHED THEN UPDATE SET {assignments} WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values});"
    )
