"""PostgreSQL as the warehouse: tables partitioned by day, the replace by COPY and partition swap (load.py), the
append and merge through SQLAlchemy with `INSERT … ON CONFLICT`."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from etl_resources.warehouse.dialects import LINEAGE_TEXT, LoadRequest, WarehouseDialect
from etl_resources.warehouse.dialects.postgresql.load import is_partitioned, replace_day
from etl_resources.warehouse.dialects.postgresql.partition_swap import partition_table_name
from etl_resources.warehouse.names import Naming
from etl_resources.warehouse.write_modes import load_day as sqlalchemy_load_day


def load_day(engine: sa.Engine, request: LoadRequest) -> tuple[sa.Table, list[str]]:
    return (replace_day if request.write_mode == "replace_partition" else sqlalchemy_load_day)(engine, request)


def prepare_append(conn: sa.Connection, table: sa.Table, partition_key: str) -> None:
    """A day-partitioned table (made for replace_partition) needs the day's partition to exist."""
    if is_partitioned(conn, table.schema, table.name):
        preparer = conn.dialect.identifier_preparer
        partition = preparer.format_table(sa.Table(partition_table_name(table.name, partition_key), sa.MetaData(), schema=table.schema))
        literal = sa.literal(partition_key, sa.Text()).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {preparer.format_table(table)} FOR VALUES IN ({literal})"))


DIALECT = WarehouseDialect(
    name="postgresql",
    display_name="PostgreSQL",
    naming=Naming("postgresql", limit=63, limit_in_bytes=True, default_schema="public", day_tables=True),
    load_day=load_day,
    # A varchar's length is checked on every row a COPY inserts, which cost a bulk load more than a third of its
    # server time; TEXT is the same storage without the check.
    types={LINEAGE_TEXT: sa.Text()},
    partition_by={"postgresql_partition_by": "LIST (_partition)"},
    is_partitioned=is_partitioned,
    prepare_append=prepare_append,
    upsert_insert=postgresql.insert,
)
