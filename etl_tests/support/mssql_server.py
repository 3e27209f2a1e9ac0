"""The SQL Server / Azure SQL database the live tests run against (ETL_TEST_MSSQL_URL): what a test leaves in it
and how that goes again. The server is shared with whoever else points tests at it, so a test only ever drops
the schema or the tables it made."""

import uuid

import sqlalchemy as sa

from etl_resources.warehouse.audit import AUDIT_TABLE, audit_log

MSSQL_URL_VARIABLE = "ETL_TEST_MSSQL_URL"
NO_MSSQL = f"{MSSQL_URL_VARIABLE} is not set: no SQL Server to run against"
# What a load names its staging table: `<table>__stage_<12 hex digits>`, in the target's schema.
STAGE_MARK = "__stage_"


def unique_schema() -> str:
    return f"etl_live_{uuid.uuid4().hex[:10]}"


def stage_tables(engine: sa.Engine, schema: str | None) -> list[str]:
    with engine.connect() as conn:
        return sorted(name for name in sa.inspect(conn).get_table_names(schema=schema) if STAGE_MARK in name)


def drop_tables(engine: sa.Engine, schema: str | None, table: str) -> None:
    """The table and every stage a load of it left, in `schema` (the login's default schema for None)."""
    with engine.begin() as conn:
        for name in sa.inspect(conn).get_table_names(schema=schema):
            if name == table or name.startswith(f"{table}{STAGE_MARK}"):
                sa.Table(name, sa.MetaData(), schema=schema).drop(conn)


def drop_schema(engine: sa.Engine, schema: str) -> None:
    """Every table in `schema`, the schema, and the audit rows of loads into it (the audit table is shared)."""
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        if inspector.has_table(AUDIT_TABLE):
            conn.execute(audit_log.delete().where(audit_log.c.target_table.startswith(f"{schema}.", autoescape=True)))
        if not inspector.has_schema(schema):
            return
        for name in inspector.get_table_names(schema=schema):
            sa.Table(name, sa.MetaData(), schema=schema).drop(conn, checkfirst=True)
        conn.execute(sa.schema.DropSchema(schema))
