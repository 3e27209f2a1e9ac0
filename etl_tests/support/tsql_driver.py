"""A recording stand-in for the SQL Server drivers (pyodbc, mssql-python), for SQLAlchemy's real mssql dialects.

No SQL Server can run here. This module answers the queries SQLAlchemy's dialect sends when it connects and
reflects (as a server with no tables would), grants every app lock, and records the rest: each statement with
its parameters, each `executemany` with its rows and pyodbc's `fast_executemany` flag, each bulk copy with its
Arrow data, and each commit and rollback. Tests assert on that record, which is what reaches the driver; what
SQL Server then does with it is for the live suite (test_mssql_live.py).
"""

import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

COLUMNS = [("value", None, None, None, None, None, None)]


class Error(Exception):
    pass


class ProgrammingError(Error):
    pass


class DatabaseError(Error):
    pass


class LostConnection(DatabaseError):
    pass


@dataclass
class Server:
    """What the fake server answers, and what it was sent. `tables` are the leftover stages it lists;
    `refuse_bulk_copy` makes a bulk copy fail as a server without bulk load would; `fail_on` fails the first
    statement containing it."""

    tables: list[str] = field(default_factory=list)
    refuse_bulk_copy: bool = False
    fail_on: str | None = None
    # The failure also loses the connection it happened on: every later call on it fails, rollback included.
    breaks: bool = False
    # sp_getapplock's answer when another session holds the target's lock for the whole wait.
    target_lock_code: int = 0
    sent: list[tuple] = field(default_factory=list)

    def answer(self, sql: str) -> list[tuple] | None:
        lowered = sql.lower()
        if self.fail_on and self.fail_on in sql:
            self.fail_on = None
            raise LostConnection(f"the server refused: {sql[:60]}") if self.breaks else DatabaseError(f"the server refused: {sql[:60]}")
        if "[information_schema].[schemata]" in lowered:
            return [("dbo",), *self.schemas()]
        if "output inserted." in lowered:
            return [(1,)]
        if "serverproperty('productversion')" in lowered or "@@version" in lowered:
            return [("Microsoft SQL Server 2022 (RTM) - 16.0.1000.6" if "@@version" in lowered else "16.0.1000.6",)]
        if "schema_name()" in lowered and "sys.tables" not in lowered:
            return [("dbo",)]
        if "sys.system_views" in lowered:
            return [("dm_exec_sessions",)]
        if "test max support" in lowered:
            return [("test max support",)]
        if "transaction_isolation_level" in lowered:
            return [("READ COMMITTED",)]
        if "select @granted" in lowered:
            return [(self.target_lock_code if "@lockowner = 'transaction'" in lowered else 0,)]
        if "from sys.tables" in lowered:
            return [(name,) for name in self.tables]
        if lowered.lstrip().startswith(("select", "with")):
            return []
        return None

    def schemas(self) -> list[tuple[str]]:
        """The schemas made so far: the one piece of state this server keeps, so a load's second plan sees its first."""
        return [
            (match.group(1),) for entry in self.sent if entry[0] == "execute" for match in [re.fullmatch(r"CREATE SCHEMA (\S+)", entry[1].strip())] if match
        ]

    def statements(self) -> list[tuple]:
        """What the load sent, without the dialect's own connect-time and reflection queries."""
        return [entry for entry in self.sent if entry[0] != "setinputsizes" and not _introspection(entry)]


def _introspection(entry: tuple) -> bool:
    kind, sql = entry[0], entry[1] if len(entry) > 1 else ""
    if kind != "execute":
        return False
    lowered = sql.lower()
    return (
        "information_schema" in lowered
        or "sys.system_views" in lowered
        or "test max support" in lowered
        or "serverproperty" in lowered
        or "@@version" in lowered
        or "transaction_isolation_level" in lowered
        or "fn_listextendedproperty" in lowered
        or re.fullmatch(r"\s*select schema_name\(\)\s*", lowered) is not None
        or ("sys." in lowered and "sys.tables" not in lowered)
    )


class Cursor:
    def __init__(self, server: Server, connection: "Connection"):
        self.server = server
        self.connection = connection
        self.description = None
        self.rowcount = -1
        self.fast_executemany = False
        self._rows: list[tuple] = []

    def execute(self, sql: str, *params: Any) -> "Cursor":
        self.connection.check_alive()
        parameters = tuple(params[0]) if len(params) == 1 and isinstance(params[0], (tuple, list)) else tuple(params)
        self.server.sent.append(("execute", sql, parameters))
        try:
            rows = self.server.answer(sql)
        except LostConnection:
            self.connection.broken = True
            raise
        self.description = COLUMNS if rows is not None else None
        self._rows = list(rows or [])
        self.rowcount = len(self._rows) if rows is not None else 1
        return self

    def executemany(self, sql: str, rows: list) -> None:
        self.server.sent.append(("executemany", sql, list(rows), self.fast_executemany))
        self.server.answer(sql)
        self.description = None

    def bulkcopy_arrow(self, table_name: str, source, **options) -> dict:
        if self.server.refuse_bulk_copy:
            raise DatabaseError("Bulk load is not supported on this endpoint")
        table = source.read_all()
        self.server.sent.append(("bulkcopy_arrow", table_name, table, options))
        return {"rows_copied": table.num_rows, "batch_count": 1, "elapsed_time": 0.0}

    def fetchone(self):
        return self._rows.pop(0) if self._rows else None

    def fetchall(self):
        rows, self._rows = self._rows, []
        return rows

    def fetchmany(self, size: int = 1):
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    def nextset(self) -> bool:
        return False

    def setinputsizes(self, sizes) -> None:
        self.server.sent.append(("setinputsizes", sizes))

    def close(self) -> None:
        pass


class Connection:
    def __init__(self, server: Server):
        self.server = server
        self.autocommit = False
        self.broken = False

    def check_alive(self) -> None:
        if self.broken:
            raise DatabaseError("Communication link failure")

    def cursor(self) -> Cursor:
        return Cursor(self.server, self)

    def commit(self) -> None:
        self.check_alive()
        self.server.sent.append(("commit",))

    def rollback(self) -> None:
        self.check_alive()
        self.server.sent.append(("rollback",))

    def close(self) -> None:
        pass

    def getinfo(self, key) -> str:
        return "ODBC Driver 18 for SQL Server"

    def add_output_converter(self, *args) -> None:
        pass


class Module(SimpleNamespace):
    """pyodbc's `SQL_*` type constants, which SQLAlchemy passes to `setinputsizes`, as their own names."""

    def __getattr__(self, name: str):
        if name.startswith("SQL_") or name in ("NUMBER", "STRING", "BINARY", "DATETIME", "ROWID"):
            return name
        raise AttributeError(name)


def module(server: Server) -> Module:
    """A DBAPI module that both SQLAlchemy's pyodbc and mssqlpython dialects accept, connected to `server`."""
    return Module(
        connect=lambda *args, **kwargs: Connection(server),
        paramstyle="qmark",
        version="5.2.0",
        __version__="1.16.0",
        pooling=lambda **kwargs: None,
        Error=Error,
        ProgrammingError=ProgrammingError,
        DatabaseError=DatabaseError,
        InterfaceError=Error,
        OperationalError=Error,
        IntegrityError=Error,
        DataError=Error,
        NotSupportedError=Error,
        InternalError=Error,
        Warning=Warning,
        Cursor=Cursor,
    )
