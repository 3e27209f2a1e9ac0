"""The Oracle database the live tests run against (ETL_TEST_ORACLE_URL), e.g.
`oracle+oracledb://etl:pw@host:1521/?service_name=FREEPDB1`. It is shared with whoever else points tests at it,
so a test only ever drops the tables it made."""

import uuid

import sqlalchemy as sa

ORACLE_URL_VARIABLE = "ETL_TEST_ORACLE_URL"
NO_ORACLE = f"{ORACLE_URL_VARIABLE} is not set: no Oracle database to run against"


def unique_table() -> str:
    return f"etl_live_{uuid.uuid4().hex[:10]}"


def drop_table(engine: sa.Engine, name: str) -> None:
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE {name} PURGE")
    except sa.exc.DatabaseError as err:
        # ORA-00942: the test failed before it made the table.
        if "ORA-00942" not in str(err.orig):
            raise
