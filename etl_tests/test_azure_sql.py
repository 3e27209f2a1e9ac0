"""Azure SQL connections. No SQL Server or Entra ID can run here: the pyodbc module is a recording fake that
keeps what SQLAlchemy hands the driver, and the credential is a stub that counts the tokens it issues."""

import struct
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from etl_resources.azure_sql import SQL_COPT_SS_ACCESS_TOKEN, TOKEN_SCOPE, uses_entra_token, with_driver_defaults
from etl_resources.engines import create_engine


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

    return SimpleNamespace(connect=connect, paramstyle="qmark", version="5.2.0", Error=type("Error", (Exception,), {}), Cursor=object, SQL_WVARCHAR=-9, SQL_WCHAR=-8)


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

    (args, kwargs), = calls
    assert credential.issued == [] and "attrs_before" not in kwargs
    assert "PWD=p@ss" in args[0] and "Encrypt=strict" in args[0] and "Encrypt=yes" not in args[0]


@pytest.mark.parametrize(
    ("url", "token"),
    [
        ("mssql+pyodbc://@srv/db", True),
        ("mssql+pyodbc://etl:secret@srv/db", False),
        ("mssql+pyodbc://@srv/db?Authentication=ActiveDirectoryMsi", False),
        ("postgresql://etl@srv/db", False),
    ],
)
def test_which_urls_use_a_token(url, token):
    assert uses_entra_token(sa.make_url(url)) is token


def test_driver_defaults_leave_other_databases_alone():
    assert with_driver_defaults(sa.make_url("postgresql://etl@srv/db")) == sa.make_url("postgresql://etl@srv/db")
    assert with_driver_defaults(sa.make_url("mssql+pyodbc://@srv/db?driver=ODBC+Driver+17+for+SQL+Server")).query["driver"] == "ODBC Driver 17 for SQL Server"
