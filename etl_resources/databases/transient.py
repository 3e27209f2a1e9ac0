"""Which failures are worth running a step again for: a lost connection, a restarting server, a deadlock.

Drivers report these through SQLSTATE classes that PostgreSQL and SQL Server (over ODBC) share; a wrong
password, a missing table or a syntax error stays wrong on the next attempt and fails at once instead.
"""

import functools
import re

import sqlalchemy as sa

# 08 connection exception, 40 transaction rollback (deadlock, serialization), 53 insufficient resources,
# 57 operator intervention (server shutting down, backend terminated), HYT timeouts (ODBC).
TRANSIENT_SQLSTATE_PREFIXES = ("08", "40", "53", "57", "HYT")
# The states mssql-python names by a text of its own instead of keeping the code (its exceptions carry none).
MSSQL_PYTHON_STATES = ("08001", "08002", "08003", "08004", "08007", "08S01", "28000", "40001", "40002", "40003", "42000", "42S02", "HYT00", "HYT01")
UNNAMED_STATE = re.compile(r"SQLSTATE code: (\w{5})")


def sqlstate(err: BaseException) -> str | None:
    """The SQLSTATE of a driver error: psycopg and ADBC keep it as `sqlstate`, pyodbc as the first argument,
    mssql-python as the text it names the state by."""
    for candidate in (err, getattr(err, "orig", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
        args = getattr(candidate, "args", ())
        if candidate is not None and type(candidate).__module__ == "pyodbc" and args and isinstance(args[0], str):
            return args[0]
        if candidate is not None and type(candidate).__module__.startswith("mssql_python") and hasattr(candidate, "driver_error"):
            return _mssql_python_state(str(candidate.driver_error))
    return None


def _mssql_python_state(driver_error: str) -> str:
    unnamed = UNNAMED_STATE.search(driver_error)
    # A text it does not map back is no state we know to be transient.
    return unnamed.group(1) if unnamed else _mssql_python_states().get(driver_error, "HY000")


@functools.cache
def _mssql_python_states() -> dict[str, str]:
    from mssql_python.exceptions import sqlstate_to_exception

    return {sqlstate_to_exception(state, "").driver_error: state for state in MSSQL_PYTHON_STATES}


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
