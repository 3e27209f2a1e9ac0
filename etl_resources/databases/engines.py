"""SQLAlchemy engines for sources and warehouses, with what each database needs beyond the URL."""

import copy
from collections.abc import Callable

import sqlalchemy as sa

from etl_resources.databases.azure_sql import (
    TokenCredential,
    default_credential,
    driver_connect_args,
    token_connect_hook,
    uses_entra_token,
    with_driver_defaults,
)


def create_engine(url: sa.URL, credential_factory: Callable[[], TokenCredential] = default_credential, **kwargs) -> sa.Engine:
    """`sa.create_engine`, plus Azure SQL's driver defaults and Entra sign-in, and SQLite's transactional DDL.

    mssql-python's own connection pool stays off (SQLAlchemy's dialect turns it off unless given
    `enable_pooling=True`): SQLAlchemy's pool is the one `pool_pre_ping`, `NullPool` and invalidation act on,
    and a second pool below it would keep connections that SQLAlchemy has closed."""
    url = with_driver_defaults(url)
    connect_args = {**driver_connect_args(url), **kwargs.pop("connect_args", {})}
    engine = sa.create_engine(url, **({"connect_args": connect_args} if connect_args else {}), **kwargs)
    if uses_entra_token(url):
        sa.event.listen(engine, "do_connect", token_connect_hook(credential_factory()))
    if url.get_backend_name() == "sqlite":
        _transactional_ddl(engine)
    return engine


def _transactional_ddl(engine: sa.Engine) -> None:
    """Python's sqlite3 commits before every DDL statement it sees, so a failed load would keep the columns it
    added. Taking BEGIN out of its hands (SQLAlchemy's documented recipe) puts DDL inside the load's transaction."""

    @sa.event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, connection_record) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")


def literal_dialect(dialect: sa.Dialect) -> sa.Dialect:
    """`dialect`, writing `%` as itself. SQLAlchemy doubles it for drivers whose paramstyle is `format`, and
    only the driver's parameter step halves it again; SQL rendered with literal values and sent with no
    parameters (a load's statements to psycopg, an extract's to ADBC) would otherwise turn `rate%` into `rate%%`."""
    raw = copy.copy(dialect)
    raw.identifier_preparer = copy.copy(dialect.identifier_preparer)
    raw.identifier_preparer._double_percents = False
    return raw
