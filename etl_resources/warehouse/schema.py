"""Warehouse tables from Parquet schemas: create them, and add the columns a source grew."""

import polars as pl
import sqlalchemy as sa

from etl_resources.warehouse import names as warehouse_names
from etl_resources.warehouse.dialects import LINEAGE_TEXT, for_dialect, typed
from etl_resources.warehouse.types import check_column_types, key_sql_type, sql_type

LINEAGE_COLUMNS = ("_loaded_at", "_source_file", "_partition")


def lineage_columns() -> list[sa.Column]:
    # PostgreSQL checks a varchar's length on every row a COPY inserts, which cost a bulk load here more than a
    # third of its server time; TEXT is the same storage without the check. SQL Server needs the bound to index.
    return [
        sa.Column("_loaded_at", sql_type(pl.Datetime("us", "UTC")), nullable=False),
        sa.Column("_source_file", typed(LINEAGE_TEXT, sa.Unicode(1024)), nullable=False),
        sa.Column("_partition", typed(LINEAGE_TEXT, sa.Unicode(32)), nullable=False),
    ]


def partition_index(table: sa.Table, dialect: str) -> sa.Index:
    """The index the per-partition delete uses (PostgreSQL tables are partitioned by `_partition` instead)."""
    return sa.Index(warehouse_names.partition_index(dialect, table.name), table.c["_partition"])


def effective_schema(conn: sa.Connection, schema: str | None) -> str | None:
    """SQLite has one namespace per file, so the target schema applies to warehouses with schemas only."""
    return schema if for_dialect(conn.dialect.name).naming.has_schemas else None


def table_plan(
    conn: sa.Connection, schema: str | None, name: str, frame_schema: pl.Schema, partitioned: bool = True, unique_keys: tuple[str, ...] = ()
) -> tuple[list[sa.Executable], sa.Table, list[str]]:
    """The DDL that makes the target table fit the frame (create it, or add the columns the source grew),
    the table as it will be, and the columns added. Nothing is executed, so the caller can run the DDL
    in the same transaction as the load, on whichever connection does the load.

    A new table is partitioned by day where the warehouse partitions (PostgreSQL) unless `partitioned` is false; `unique_keys` get a unique
    index (a merge's upsert needs one)."""
    warehouse = for_dialect(conn.dialect.name)
    schema = effective_schema(conn, schema)
    mode = "merge" if unique_keys else "replace_partition" if partitioned else "append"
    warehouse_names.check_target(conn.dialect.name, schema, name, mode)
    data_columns = [col for col in frame_schema.names() if col not in LINEAGE_COLUMNS]
    inspector = sa.inspect(conn)
    ddl: list[sa.Executable] = []
    if schema and not inspector.has_schema(schema):
        ddl.append(sa.schema.CreateSchema(schema))
    if not inspector.has_table(name, schema=schema):
        warehouse_names.check_columns(conn.dialect.name, name, [*data_columns, *LINEAGE_COLUMNS])
        key_dtypes = [frame_schema[key] for key in unique_keys if key in frame_schema]
        columns = [
            sa.Column(col, key_sql_type(dtype, key_dtypes) if col in unique_keys else sql_type(dtype))
            for col, dtype in frame_schema.items()
            if col not in LINEAGE_COLUMNS
        ]
        if warehouse.partition_by and partitioned:
            table = sa.Table(name, sa.MetaData(), *columns, *lineage_columns(), schema=schema, **warehouse.partition_by)
            return [*ddl, sa.schema.CreateTable(table)], table, []
        table = sa.Table(name, sa.MetaData(), *columns, *lineage_columns(), schema=schema)
        ddl += [sa.schema.CreateTable(table), sa.schema.CreateIndex(partition_index(table, conn.dialect.name))]
        if unique_keys:
            ddl.append(sa.schema.CreateIndex(keys_index(table, unique_keys, conn.dialect.name)))
        return ddl, table, []
    table = _reflect_columns(conn, schema, name)
    warehouse_names.check_columns(conn.dialect.name, name, data_columns, [column.name for column in table.columns])
    check_column_types(table, frame_schema, conn.dialect)
    added = [col for col in data_columns if col not in table.columns]
    for col in added:
        column = sa.Column(col, sql_type(frame_schema[col]))
        definition = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
        ddl.append(warehouse_names.sql_text(f"ALTER TABLE {_qualified(conn, table)} {warehouse.add_column} {definition}"))
        table.append_column(column)
    return ddl, table, added


def keys_index(table: sa.Table, keys: tuple[str, ...], dialect: str) -> sa.Index:
    return sa.Index(warehouse_names.keys_index(dialect, table.name), *(table.c[key] for key in keys), unique=True)


def ensure_table(
    conn: sa.Connection, schema: str | None, name: str, frame_schema: pl.Schema, partitioned: bool = True, unique_keys: tuple[str, ...] = ()
) -> tuple[sa.Table, list[str]]:
    """Create the target table if missing, add columns the source grew; return it and the columns added."""
    ddl, table, added = table_plan(conn, schema, name, frame_schema, partitioned, unique_keys)
    for statement in ddl:
        conn.execute(statement)
    return table, added


def _reflect_columns(conn: sa.Connection, schema: str | None, name: str) -> sa.Table:
    """Columns only: constraints and indexes are the DBA's business and not needed to load rows."""
    columns = sa.inspect(conn).get_columns(name, schema=schema)
    return sa.Table(name, sa.MetaData(), *(sa.Column(c["name"], c["type"]) for c in columns), schema=schema)


def _qualified(conn: sa.Connection, table: sa.Table) -> str:
    return conn.dialect.identifier_preparer.format_table(table)
