"""The PostgreSQL replace: a binary COPY of the day into a table of its own that is swapped in as its partition."""

import sqlalchemy as sa

from etl_resources.databases.engines import literal_dialect
from etl_resources.prefetch import ReadAhead
from etl_resources.warehouse.dialects import LoadRequest, for_dialect
from etl_resources.warehouse.dialects.postgresql import copy as pg_copy
from etl_resources.warehouse.dialects.postgresql.partition_swap import Lineage, PartitionSwap, files_pattern
from etl_resources.warehouse.schema import LINEAGE_COLUMNS, table_plan
from etl_resources.warehouse.write_modes import with_lineage

COPY_CHUNK_ROWS = 25_000


def is_partitioned(conn: sa.Connection, schema: str | None, name: str) -> bool:
    """Whether a PostgreSQL table is partitioned; one made by hand or by an older version may not be."""
    kind = conn.execute(
        sa.text(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = COALESCE(:schema, current_schema()) AND c.relname = :name"
        ),
        {"schema": schema, "name": name},
    ).scalar()
    return kind == "p"


def replace_day(engine: sa.Engine, request: LoadRequest) -> tuple[sa.Table, list[str]]:
    """A binary COPY of Arrow batches (pgpq-encoded, sent by psycopg) and the DDL around it, in one transaction.

    Tables this platform creates are partitioned, and a load swaps the day's partition (see partition_swap);
    a table made otherwise gets the day's rows deleted and the new ones copied in.
    """
    frame, schema, table_name, partition_key = request.frame, request.schema, request.table, request.partition_key
    with engine.connect() as probe:
        ddl, table, added = table_plan(probe, schema, table_name, frame.collect_schema())
        partitioned = any(isinstance(statement, sa.schema.CreateTable) for statement in ddl) or is_partitioned(probe, table.schema, table.name)
        dialect = literal_dialect(probe.dialect)
    statements = [str(statement.compile(dialect=dialect)) for statement in ddl]
    if partitioned:
        swap = PartitionSwap(dialect, table, partition_key, [name for name in frame.collect_schema() if name not in LINEAGE_COLUMNS])
        target = swap.stage
    else:
        frame = with_lineage(frame, request.loaded_at, partition_key)
        delete = table.delete().where(table.c["_partition"] == partition_key)
        statements.append(str(delete.compile(dialect=dialect, compile_kwargs={"literal_binds": True})))
        target = table
    # Binary COPY wants each column in exactly the table's type.
    warehouse = for_dialect("postgresql")
    dtypes = {column.name: warehouse.read_dtype(column.type) for column in target.columns}
    present = frame.collect_schema()
    frame = frame.cast({name: dtype for name, dtype in dtypes.items() if dtype is not None and name in present})
    keep = [column.name for column in target.columns if column.name in present]
    # Decoding Parquet and encoding COPY run on a read-ahead thread from here on: first while we connect and
    # run the DDL, then while psycopg sends the previous chunk.
    chunks = ReadAhead(
        pg_copy.encoded(record_batch for batch in request.batches(frame, COPY_CHUNK_ROWS) for record_batch in batch.select(keep).to_arrow().to_batches())
    )
    try:
        with pg_copy.connect(engine.url) as conn:
            try:
                with conn.cursor() as cursor:
                    if partitioned:
                        cursor.execute(swap.lock())
                    for statement in statements:
                        cursor.execute(statement)
                    if partitioned:
                        cursor.execute(swap.lookup())
                        found = cursor.fetchall()
                        cursor.execute(swap.create_stage())
                    pg_copy.copy_chunks(cursor, pg_copy.copy_statement(dialect, target, keep, freeze=partitioned), chunks)
                    if partitioned:
                        for statement in swap.finish(found, Lineage(request.loaded_at, files_pattern(request.files), partition_key)):
                            cursor.execute(statement)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
    finally:
        chunks.close()
    return table, added
