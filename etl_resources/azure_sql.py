"""Engines for Azure SQL / SQL Server: ODBC Driver 18, encryption on, and Entra ID tokens when no password is given.

With no password (and no ODBC `Authentication=` keyword) in an `mssql+pyodbc` URL, each new connection gets a
fresh access token from azure-identity, handed to the driver as `SQL_COPT_SS_ACCESS_TOKEN`: Managed Identity in
Azure, `az login` on a laptop. A token is asked for per connection, not per engine, so a backfill that runs
for hours never reuses an expired one (the credential caches tokens and renews them before they lapse).
"""

import struct
from collections.abc import Callable
from typing import Any, Protocol

import sqlalchemy as sa

SQL_COPT_SS_ACCESS_TOKEN = 1256
TOKEN_SCOPE = "https://database.windows.net/.default"
ODBC_DRIVER = "ODBC Driver 18 for SQL Server"


class TokenCredential(Protocol):
    def get_token(self, *scopes: str) -> Any: ...


def default_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def uses_entra_token(url: sa.URL) -> bool:
    keys = {key.lower() for key in url.query}
    return url.get_backend_name() == "mssql" and url.get_driver_name() == "pyodbc" and not url.password and "authentication" not in keys and "odbc_connect" not in keys


def with_driver_defaults(url: sa.URL) -> sa.URL:
    """ODBC Driver 18 and `Encrypt=yes` unless the URL says otherwise (Azure SQL refuses unencrypted logins)."""
    if url.get_backend_name() != "mssql" or url.get_driver_name() != "pyodbc" or "odbc_connect" in url.query:
        return url
    keys = {key.lower() for key in url.query}
    defaults = {"driver": ODBC_DRIVER, "Encrypt": "yes"}
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
