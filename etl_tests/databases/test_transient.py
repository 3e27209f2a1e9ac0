"""Which driver errors a step runs again for. The errors are the drivers' own exception classes, made as each
driver makes them for these SQLSTATEs; no server is needed to tell them apart."""

import pyodbc
import pytest
from mssql_python.exceptions import raise_exception

from etl_resources.databases.transient import is_transient_connect_error, is_transient_database_error, sqlstate


def mssql_python_error(state: str) -> Exception:
    with pytest.raises(Exception) as raised:
        raise_exception(state, f"[Microsoft][ODBC Driver 18 for SQL Server] state {state}")
    return raised.value


@pytest.mark.parametrize(
    ("state", "transient"),
    [("08001", True), ("08S01", True), ("40001", True), ("HYT00", True), ("08S02", True), ("28000", False), ("42S02", False), ("42000", False)],
)
def test_mssql_python_errors_keep_their_state_so_a_wrong_password_is_not_retried(state, transient):
    error = mssql_python_error(state)

    assert sqlstate(error) == state
    assert is_transient_database_error(error) is transient
    assert is_transient_connect_error(error) is transient


def test_pyodbc_errors_are_read_from_their_first_argument():
    assert not is_transient_connect_error(pyodbc.InterfaceError("28000", "[28000] Login failed for user 'etl'. (18456)"))
    assert is_transient_connect_error(pyodbc.OperationalError("08001", "[08001] TCP Provider: Error code 0x2749"))
    assert is_transient_database_error(pyodbc.Error("40001", "Transaction was deadlocked (1205)"))
