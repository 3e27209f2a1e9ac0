"""The warehouse DDL for Azure SQL, compiled with SQLAlchemy's mssql dialect (no SQL Server can run here), and the names a PostgreSQL partition swap uses."""

import fnmatch

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, postgresql

from etl_resources.warehouse.audit import audit_log
from etl_resources.warehouse.dialects.postgresql.partition_swap import files_pattern, partition_table_name
from etl_resources.warehouse.names import LOAD_SUFFIX
from etl_resources.warehouse.schema import lineage_columns, partition_index
from etl_resources.warehouse.types import sql_type

FRAME = pl.Schema(
    {
        "order_id": pl.Int64(),
        "customer_id": pl.Int32(),
        "amount": pl.Decimal(12, 2),
        "ordered_at": pl.Datetime("us", "UTC"),
        "shipped_at": pl.Datetime("us"),
        "day": pl.Date(),
        "paid": pl.Boolean(),
        "note": pl.String(),
        "blob": pl.Binary(),
    }
)


def create_table(dialect) -> str:
    table = sa.Table("orders", sa.MetaData(), *(sa.Column(n, sql_type(t)) for n, t in FRAME.items()), *lineage_columns(), schema="dw")
    return str(sa.schema.CreateTable(table).compile(dialect=dialect))


def test_azure_sql_gets_modern_tsql_types():
    ddl = create_table(mssql.dialect())

    for expected in (
        "[order_id] BIGINT",
        "customer_id INTEGER",
        "amount NUMERIC(12, 2)",
        "ordered_at DATETIMEOFFSET",
        "shipped_at DATETIME2",
        "day DATE",
        "paid BIT",
        "note NVARCHAR(max)",
        "[blob] VARBINARY(max)",
        "_loaded_at DATETIMEOFFSET NOT NULL",
        "_partition NVARCHAR(32) NOT NULL",
    ):
        assert expected.replace("[", "").replace("]", "") in ddl.replace("[", "").replace("]", "")
    for legacy in ("NTEXT", "IMAGE", " DATETIME,", " DATETIME\n"):
        assert legacy not in ddl
    audit = str(sa.schema.CreateTable(audit_log).compile(dialect=mssql.dialect()))
    assert "IDENTITY" in audit and "started_at DATETIMEOFFSET NOT NULL" in audit and "error_message NVARCHAR(max)" in audit


def test_postgresql_keeps_zones_and_decimals():
    ddl = create_table(postgresql.dialect())

    assert "ordered_at TIMESTAMP WITH TIME ZONE" in ddl
    assert "shipped_at TIMESTAMP WITHOUT TIME ZONE" in ddl
    assert "amount NUMERIC(12, 2)" in ddl and "note TEXT" in ddl and "blob BYTEA" in ddl


def test_azure_sql_finds_a_partition_through_a_btree_index():
    table = sa.Table("orders", sa.MetaData(), *lineage_columns(), schema="dw")
    index = sa.schema.CreateIndex(partition_index(table, "mssql"))

    assert str(index.compile(dialect=mssql.dialect())) == "CREATE INDEX ix_orders__partition ON dw.orders (_partition)"


def test_partition_tables_are_named_for_their_day_within_postgresqls_identifier_limit():
    assert partition_table_name("orders", "2026-11-01") == "orders_p20261101"
    long_a, long_b = partition_table_name("x" * 70 + "a", "2026-11-01"), partition_table_name("x" * 70 + "b", "2026-11-01")
    assert long_a != long_b
    assert all(len(name) + len(LOAD_SUFFIX) <= 63 and name.endswith("_p20261101") for name in (long_a, long_b))


def test_a_partitions_lineage_names_its_file_or_a_pattern_of_exactly_its_write():
    one = "raw/orders/date=2026-11-01/part-20261102T010203-0a1b2c3d-00000.parquet"
    parts = {one.replace("00000", f"{n:05d}") for n in range(12)}

    assert files_pattern({one}) == one
    assert files_pattern(parts) == "raw/orders/date=2026-11-01/part-20261102T010203-0a1b2c3d-*.parquet"
    assert all(fnmatch.fnmatch(name, files_pattern(parts)) for name in parts)
    assert not fnmatch.fnmatch(one.replace("0a1b2c3d", "ffffffff"), files_pattern(parts))
    assert files_pattern(set()) == ""
