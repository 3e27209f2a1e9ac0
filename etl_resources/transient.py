"""Which failures are worth running a step again for: a lost connection, a restarting server, a deadlock.

Drivers report these through SQLSTATE classes that PostgreSQL and SQL Server (over ODBC) share; a wrong
password, a missing table or a syntax error stays wrong on the next attempt and fails at once instead.
"""

import sqlalchemy as sa

# 08 connection exception, 40 transaction rollback (deadlock, serialization), 53 insufficient resources,
# 57 operator intervention (server shutting down, backend terminated), HYT timeouts (ODBC).
TRANSIENT_SQLSTATE_PREFIXES = ("08", "40", "53", "57", "HYT")


def sqlstate(err: BaseException) -> str | None:
    """The SQLSTATE of a driver error: psycopg and ADBC keep it as `sqlstate`, pyodbc as the first argument."""
    for candidate in (err, getattr(err, "orig", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
        args = getattr(candidate, "args", ())
        if candidate is not None and type(candidate).__module__ == "pyodbc" and args and isinstance(args[0], str):
            return args[0]
    return None


def is_transient_database_error(err: BaseException) -> bool:
    if isinstance(err, sa.exc.DBAPIError) and err.connection_invalidated:
        return True
    state = sqlstate(err)
    return state is not None and state.startswith(TRANSIENT_SQLSTATE_PREFIXES)


def is_transient_connect_error(err: BaseException) -> bool:
    """A refused or timed-out connection may work later. psycopg reports every failed connect without a SQLSTATE,
    so on PostgreSQL a wrong password is tried again too; ODBC reports a rejected login as class 28, not retried."""
    state = sqlstate(err)
    return state is None or is_transient_database_error(err)
