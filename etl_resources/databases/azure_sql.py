"""Engines for Azure SQL / SQL Server over either driver: encryption on, and Entra ID when no password is given.

`mssql+pyodbc` (Microsoft's ODBC Driver 18, installed on the system): with no password (and no ODBC
`Authentication=` keyword), each new connection gets a fresh access token from azure-identity, handed to the
driver as `SQL_COPT_SS_ACCESS_TOKEN`: Managed Identity in Azure, `az login` on a laptop. A token is asked for
per connection, not per engine, so a backfill that runs for hours never reuses an expired one (the credential
caches tokens and renews them before they lapse).

`mssql+mssqlpython` (Microsoft's mssql-python, which bundles the driver): with no password, the URL gets
`Authentication=ActiveDirectoryDefault` and the driver signs in with `DefaultAzureCredential` itself. A token
in `attrs_before` would not do here: `cursor.bulkcopy` opens a connection of its own from the connection
string and signs that one in from the `Authentication` keyword alone.
"""

import struct
from collections.abc import Callable
from typing import Any, Protocol

import sqlalchemy as sa

SQL_COPT_SS_ACCESS_TOKEN = 1256
TOKEN_SCOPE = "https://database.windows.net/.default"
ODBC_DRIVER = "ODBC Driver 18 for SQL Server"
MSSQL_PYTHON_ENTRA = "ActiveDirectoryDefault"


class TokenCredential(Protocol):
    def get_token(self, *scopes: str) -> Any: ...


def default_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def query_keys(url: sa.URL) -> set[str]:
    """The URL's query keywords in lower case: both drivers read connection-string keywords in any case."""
    return {key.lower() for key in url.query}


def uses_entra_token(url: sa.URL) -> bool:
    keys = query_keys(url)
    return (
        url.get_backend_name() == "mssql"
        and url.get_driver_name() == "pyodbc"
        and not url.password
        and "authentication" not in keys
        and "odbc_connect" not in keys
    )


def with_driver_defaults(url: sa.URL) -> sa.URL:
    """Encryption on unless the URL says otherwise (Azure SQL refuses unencrypted logins), plus what each driver needs."""
    if url.get_backend_name() != "mssql":
        return url
    if url.get_driver_name() == "pyodbc" and "odbc_connect" not in url.query:
        return with_missing_keys(url, {"driver": ODBC_DRIVER, "Encrypt": "yes"})
    if url.get_driver_name() == "mssqlpython":
        return with_missing_keys(url, mssql_python_defaults(url))
    return url


def mssql_python_defaults(url: sa.URL) -> dict[str, str]:
    """No `driver`: mssql-python loads its own and refuses the keyword. With no password and no way of
    signing in named (Trusted_Connection is Kerberos), Entra by the driver itself; `authentication` is the
    spelling SQLAlchemy's dialect documents, and the driver reads keywords in any case."""
    defaults = {"Encrypt": "yes"}
    if not url.password and not query_keys(url) & {"authentication", "trusted_connection"}:
        defaults["authentication"] = MSSQL_PYTHON_ENTRA
    return defaults


def driver_connect_args(url: sa.URL) -> dict[str, str]:
    """Arguments for the driver's connect beside the connection string. mssql-python trims the spaces around an
    unbraced value, which SQLAlchemy leaves a password with (` secret ` would sign in as `secret`); given as
    its own argument, the driver braces it whole, in the string its bulk copy reuses too."""
    if url.get_backend_name() == "mssql" and url.get_driver_name() == "mssqlpython" and url.password:
        return {"PWD": url.password}
    return {}


def with_missing_keys(url: sa.URL, defaults: dict[str, str]) -> sa.URL:
    keys = query_keys(url)
    return url.update_query_dict({key: value for key, value in defaults.items() if key.lower() not in keys})


def access_token_struct(token: str) -> bytes:
    """The layout msodbcsql wants: a 4-byte little-endian length, then the token in UTF-16-LE."""
    encoded = token.encode("utf-16-le")
    return struct.pack(f"<I{len(encoded)}s", len(encoded), encoded)


def token_connect_hook(credential: TokenCredential) -> Callable:
    """A `do_connect` listener that gives every new DBAPI connection a current token."""

    def provide_token(dialect, connection_record, cargs: list, cparams: dict) -> None:
        # SQLAlchemy adds Trusted_Connection when the URL has no user; with a token it must not be there.
        if cargs and isinstance(cargs[0], str):
            cargs[0] = cargs[0].replace(";Trusted_Connection=Yes", "")
        token = credential.get_token(TOKEN_SCOPE).token
        cparams["attrs_before"] = {**cparams.get("attrs_before", {}), SQL_COPT_SS_ACCESS_TOKEN: access_token_struct(token)}

    return provide_token
