"""Azure SQL connections. No SQL Server or Entra ID can run here: the pyodbc and mssql_python modules are
recording fakes that keep what SQLAlchemy hands the driver and connect to nothing, and the credential is a stub
that counts the tokens it issues. mssql-python's own connection-string parser reads what would reach it, so
quoting and keywords are checked as that driver reads them; its sign-in and bulk copy are not run."""

import struct
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from mssql_python.connection import Connection as MssqlPythonConnection
from mssql_python.connection_string_parser import _ConnectionStringParser

from etl_resources.databases.azure_sql import SQL_COPT_SS_ACCESS_TOKEN, TOKEN_SCOPE, uses_entra_token, with_driver_defaults
from etl_resources.databases.engines import create_engine


class StubCredential:
    def __init__(self):
        self.issued: list[str] = []

    def get_token(self, *scopes: str) -> SimpleNamespace:
        assert scopes == (TOKEN_SCOPE,)
        self.issued.append(f"token-{len(self.issued) + 1}")
        return SimpleNamespace(token=self.issued[-1], expires_on=0)


class Connected(Exception):
    """Raised by the fake driver once it has recorded a connect, so no server is needed."""


def fake_pyodbc(calls: list) -> SimpleNamespace:
    def connect(*args, **kwargs):
        calls.append((args, kwargs))
        raise Connected()

    return SimpleNamespace(
        connect=connect, paramstyle="qmark", version="5.2.0", Error=type("Error", (Exception,), {}), Cursor=object, SQL_WVARCHAR=-9, SQL_WCHAR=-8
    )


def decode(token_struct: bytes) -> str:
    (length,) = struct.unpack_from("<I", token_struct)
    return token_struct[4 : 4 + length].decode("utf-16-le")


def connect(url: str, credential: StubCredential, calls: list, times: int = 1) -> None:
    engine = create_engine(sa.make_url(url), credential_factory=lambda: credential, module=fake_pyodbc(calls))
    for _ in range(times):
        with pytest.raises(Connected):
            engine.connect()


def test_each_new_connection_gets_a_fresh_entra_token_over_encrypted_odbc_18():
    credential, calls = StubCredential(), []

    connect("mssql+pyodbc://@etl-sql.database.windows.net/warehouse", credential, calls, times=2)

    assert credential.issued == ["token-1", "token-2"]
    assert [decode(kwargs["attrs_before"][SQL_COPT_SS_ACCESS_TOKEN]) for _, kwargs in calls] == ["token-1", "token-2"]
    connection_string = calls[0][0][0]
    assert "DRIVER={ODBC Driver 18 for SQL Server}" in connection_string and "Encrypt=yes" in connection_string
    assert "Trusted_Connection" not in connection_string and "PWD" not in connection_string


def test_sql_authentication_sends_the_password_and_asks_for_no_token():
    credential, calls = StubCredential(), []

    connect("mssql+pyodbc://etl:p%40ss@etl-sql.database.windows.net/warehouse?Encrypt=strict", credential, calls)

    ((args, kwargs),) = calls
    assert credential.issued == [] and "attrs_before" not in kwargs
    assert "PWD=p@ss" in args[0] and "Encrypt=strict" in args[0] and "Encrypt=yes" not in args[0]


@pytest.mark.parametrize(
    ("url", "token"),
    [
        ("mssql+pyodbc://@srv/db", True),
        ("mssql+pyodbc://etl:secret@srv/db", False),
        ("mssql+pyodbc://@srv/db?Authentication=ActiveDirectoryMsi", False),
        ("mssql+mssqlpython://@srv/db", False),
        ("postgresql://etl@srv/db", False),
    ],
)
def test_which_urls_use_a_token(url, token):
    assert uses_entra_token(sa.make_url(url)) is token


def test_driver_defaults_leave_other_databases_alone():
    assert with_driver_defaults(sa.make_url("postgresql://etl@srv/db")) == sa.make_url("postgresql://etl@srv/db")
    assert with_driver_defaults(sa.make_url("mssql+pyodbc://@srv/db?driver=ODBC+Driver+17+for+SQL+Server")).query["driver"] == "ODBC Driver 17 for SQL Server"


def fake_mssql_python(calls: list, pooling: list) -> SimpleNamespace:
    def connect(*args, **kwargs):
        calls.append((args, kwargs))
        raise Connected()

    return SimpleNamespace(
        connect=connect, pooling=lambda **kwargs: pooling.append(kwargs), paramstyle="qmark", __version__="1.16.0", Error=type("Error", (Exception,), {})
    )


def mssql_python_connect(url: sa.URL) -> tuple[dict[str, str], dict, StubCredential]:
    """What the driver would read of the one connect: its parser's keywords (lower case) and the other arguments."""
    credential, calls, pooling = StubCredential(), [], []
    engine = create_engine(url, credential_factory=lambda: credential, module=fake_mssql_python(calls, pooling))
    with pytest.raises(Connected):
        engine.connect()
    assert pooling == [{"enabled": False}], "SQLAlchemy's pool is the only one"
    ((args, kwargs),) = calls
    # The driver merges the connect arguments into the string (they win), and its bulk copy reuses the result.
    # It refuses a Driver or APP keyword from us (validate_keywords) and adds its own, left out here.
    _ConnectionStringParser(validate_keywords=True)._parse(args[0])
    merged, _ = MssqlPythonConnection._construct_connection_string(None, args[0], **kwargs)
    params = _ConnectionStringParser(validate_keywords=False)._parse(merged)
    return {key: value for key, value in params.items() if key not in ("driver", "app")}, kwargs, credential


def test_mssql_python_without_a_password_signs_in_to_entra_by_the_driver_itself():
    params, kwargs, credential = mssql_python_connect(sa.make_url("mssql+mssqlpython://@etl-sql.database.windows.net/warehouse"))

    assert params == {"server": "etl-sql.database.windows.net", "database": "warehouse", "authentication": "ActiveDirectoryDefault", "encrypt": "yes"}
    assert kwargs == {} and credential.issued == []


@pytest.mark.parametrize("password", ["p;ss", "p}ss", "{pss", "p@ss%20w=rd", "a;b}c{d@e%f", " lead", "trail ", " both ; } "])
def test_mssql_python_sql_authentication_reaches_the_driver_with_the_password_intact(password):
    url = sa.URL.create("mssql+mssqlpython", username="etl", password=password, host="etl-sql.database.windows.net", database="warehouse")

    params, kwargs, credential = mssql_python_connect(url)

    assert params["uid"] == "etl" and params["pwd"] == password and params["encrypt"] == "yes"
    assert "authentication" not in params and kwargs == {"PWD": password} and credential.issued == []


@pytest.mark.parametrize(
    ("url", "uid", "authentication"),
    [
        ("mssql+mssqlpython://@srv/db?authentication=ActiveDirectoryMSI", None, "ActiveDirectoryMSI"),
        ("mssql+mssqlpython://3f2a-client-id@srv/db?Authentication=ActiveDirectoryMSI", "3f2a-client-id", "ActiveDirectoryMSI"),
        ("mssql+mssqlpython://app-id:app-secret@srv/db?Authentication=ActiveDirectoryServicePrincipal", "app-id", "ActiveDirectoryServicePrincipal"),
    ],
)
def test_mssql_python_leaves_an_explicit_authentication_alone(url, uid, authentication):
    params, _, _ = mssql_python_connect(sa.make_url(url))

    assert params.get("uid") == uid and params["authentication"] == authentication


def test_mssql_python_keeps_the_urls_encryption_and_is_given_no_driver():
    params, _, _ = mssql_python_connect(sa.make_url("mssql+mssqlpython://etl:secret@srv:1433/db?Encrypt=strict&TrustServerCertificate=no"))

    assert params["encrypt"] == "strict" and params["server"] == "srv,1433" and params["trustservercertificate"] == "no"
    assert "driver" not in with_driver_defaults(sa.make_url("mssql+mssqlpython://@srv/db")).query
