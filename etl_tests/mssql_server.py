"""The SQL Server / Azure SQL database the live tests run against (ETL_TEST_MSSQL_URL): what a test leaves in it
and how that goes again. The server is shared with whoever else points tests at it, so a test only ever drops
the schema or the tables it made."""

import sqlalchemy as sa

MSSQL_URL_VARIABLE = "ETL_TEST_MSSQL_URL"
NO_MSSQL = f"{MSSQL_URL_VARIABLE} is not set: no SQL Server to run against"
# What a load names its staging table: `<table>__stage_<12 hex digits>`, in the target's schema.
STAGE_MARK = "__stage_"


def drop_tables(engine: sa.Engine, schema: str | None, table: str) -> None:
    """The table and every stage a load of it left, in `schema` (the login's default schema for None)."""
    with engine.begin() as conn:
        for name in sa.inspect(conn).get_table_names(schema=schema):
            if name == table or name.startswith(f"{table}{STAGE_MARK}"):
                sa.Table(name, sa.MetaData(), schema=schema).drop(conn)

