"""Loads into Azure SQL / SQL Server: the day's rows go into a staging table, then one short transaction moves them.

1. A real table `<table>__stage_<id>` is made beside the target and committed, under a session app lock
   (`sp_getapplock`) that says a live load owns it. A real table, not a `#temp` one, so that any connection
   can fill it, a bulk copy's own included.
2. It is filled outside the target's transaction: by mssql-python's TDS bulk copy (`bulkcopy_arrow`, over a
   connection of its own) where the server accepts one, else by parameter arrays on the load's connection
   (pyodbc's `fast_executemany`, mssql-python's column-wise `executemany`).
3. One transaction, under an exclusive app lock on the target, runs the DDL the day needs and the write
   mode's statements (`move_statements`), drops the stage and commits. The target is locked only for that
   server-side step, not while the rows cross the network, and a failed or killed load leaves it as it was.
4. A stage left by a killed load is dropped by the next load of that table, once its lock shows that no
   session holds it any more.

The upsert is an `UPDATE … FROM` and an `INSERT … WHERE NOT EXISTS` under `UPDLOCK, HOLDLOCK`, not `MERGE`,
which some T-SQL endpoints lack and which has a long record of concurrency defects on SQL Server itself.
Zoned timestamps are staged as UTC `DATETIME2` and become `DATETIMEOFFSET` in the move (offset.py).
"""

import datetime as dt
import hashlib
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from etl_resources.warehouse import names as warehouse_names
from etl_resources.warehouse.dialects import LoadRequest, for_dialect
from etl_resources.warehouse.dialects.mssql.offset import at_utc, utc_naive
from etl_resources.warehouse.schema import table_plan
from etl_resources.warehouse.types import WarehouseTypeError, check_floats
from etl_resources.warehouse.write_modes import ROW_NUMBER, WriteModeError, check_keys_present, ensure_keys_index

ARRAY_ROWS = 10_000
BULK_ROWS = 100_000
TARGET_LOCK_TIMEOUT_MS = 15 * 60 * 1000
APPLOCK_RESOURCE_LIMIT = 255


class MssqlLoadError(RuntimeError):
    pass


@dataclass(frozen=True)
class DayLoad:
    """One day's load into `target`: how its rows get into `stage`, and the constants the move adds."""

    target: sa.Table
    stage: sa.Table
    partition_key: str
    loaded_at: dt.datetime
    write_mode: str
    keys: tuple[str, ...]

    @property
    def copied(self) -> list[str]:
        """The stage's columns that the move copies (data and `_source_file`), in stage order."""
        return [column.name for column in self.stage.columns if column.name != ROW_NUMBER]

    @property
    def zoned(self) -> set[str]:
        return {name for name in self.copied if _has_zone(self.target.c[name].type)}


def _has_zone(column_type: sa.types.TypeEngine) -> bool:
    """Planned columns carry SQLAlchemy's zoned DateTime (with an mssql variant), reflected ones DATETIMEOFFSET."""
    return isinstance(column_type, mssql.DATETIMEOFFSET) or (isinstance(column_type, sa.DateTime) and column_type.timezone)


def uses_bulk_copy(dialect: sa.Dialect) -> bool:
    """mssql-python ships a TDS bulk copy; pyodbc has none, so it sends parameter arrays."""
    return dialect.driver == "mssqlpython"


def quote(dialect: sa.Dialect, name: str) -> str:
    return dialect.identifier_preparer.quote_identifier(name)


def table_sql(dialect: sa.Dialect, table: sa.Table) -> str:
    """`[schema].[name]`, always bracketed, as the bulk copy and the statements name it."""
    return ".".join(quote(dialect, part) for part in (table.schema, table.name) if part)


def applock_resource(kind: str, schema: str | None, name: str) -> str:
    """An app lock's name: `etl-<kind>:<schema>.<table>`, folded as SQL Server compares names, hashed past 255."""
    rules = warehouse_names.naming("mssql")
    resource = f"etl-{kind}:{rules.fold(schema or '')}.{rules.fold(name)}"
    if len(resource) <= APPLOCK_RESOURCE_LIMIT:
        return resource
    return f"{resource[: APPLOCK_RESOURCE_LIMIT - 41]}#{hashlib.sha1(resource.encode()).hexdigest()}"


def _getapplock(owner: str, wait_ms: int) -> str:
    """An exclusive app lock named by a parameter, its code in @granted (< 0: not granted). NOCOUNT keeps row
    counts from coming back as results ahead of the batch's SELECT; the batch sets it back for the pool."""
    return (
        "SET NOCOUNT ON; DECLARE @granted int; "
        f"EXEC @granted = sp_getapplock @Resource = ?, @LockMode = 'Exclusive', @LockOwner = '{owner}', @LockTimeout = {wait_ms}; "
    )


def applock_statement(owner: str, wait_ms: int) -> str:
    """Take the lock; the result is sp_getapplock's code."""
    return _getapplock(owner, wait_ms) + "SET NOCOUNT OFF; SELECT @granted"


RELEASE_STAGE_LOCK = "EXEC sp_releaseapplock @Resource = ?, @LockOwner = 'Session'"


def stage_for(target: sa.Table, columns: list[str], load_id: str) -> sa.Table:
    """The stage: the copied columns in the target's types, zoned timestamps as UTC `DATETIME2`, and the row number."""
    name = warehouse_names.load_stage("mssql", target.name, load_id)
    copied = [sa.Column(column, mssql.DATETIME2() if _has_zone(target.c[column].type) else target.c[column].type) for column in columns]
    return sa.Table(name, sa.MetaData(), *copied, sa.Column(ROW_NUMBER, sa.BigInteger(), nullable=False), schema=target.schema)


def leftover_stages_statement() -> str:
    """Tables in the target's schema named like its stages and carrying the stage's row number column."""
    return (
        "SELECT t.name FROM sys.tables AS t JOIN sys.schemas AS s ON s.schema_id = t.schema_id "
        "WHERE s.name = COALESCE(?, SCHEMA_NAME()) AND t.name LIKE ? ESCAPE '\\' "
        f"AND COL_LENGTH(QUOTENAME(s.name) + '.' + QUOTENAME(t.name), '{ROW_NUMBER}') IS NOT NULL"
    )


def like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("[", "\\[")
    return escaped + "%"


def drop_if_unowned_statement(dialect: sa.Dialect, stage: sa.Table) -> str:
    """Drop a leftover stage only if its lock can be had at once, i.e. the load that made it is gone."""
    return (
        _getapplock("Session", 0)
        + f"IF @granted >= 0 BEGIN DROP TABLE {table_sql(dialect, stage)}; EXEC sp_releaseapplock @Resource = ?, @LockOwner = 'Session'; END; "
        + "SET NOCOUNT OFF; SELECT @granted"
    )


def move_statements(dialect: sa.Dialect, day: DayLoad) -> list[tuple[str, tuple]]:
    """The T-SQL that moves the staged rows into the target for the day's write mode, with its parameters."""
    target, stage = table_sql(dialect, day.target), table_sql(dialect, day.stage)
    copied, zoned = day.copied, day.zoned
    loaded_at = utc_naive(day.loaded_at)

    def value(name: str) -> str:
        return at_utc(f"s.{quote(dialect, name)}") if name in zoned else f"s.{quote(dialect, name)}"

    names = ", ".join(quote(dialect, name) for name in [*copied, "_loaded_at", "_partition"])
    values = ", ".join([*(value(name) for name in copied), at_utc("?"), "?"])
    constants = (loaded_at, day.partition_key)
    if day.write_mode == "append":
        return [(f"INSERT INTO {target} ({names}) SELECT {values} FROM {stage} AS s", constants)]
    if day.write_mode == "replace_partition":
        return [
            (f"DELETE FROM {target} WHERE {quote(dialect, '_partition')} = ?", (day.partition_key,)),
            (f"INSERT INTO {target} ({names}) SELECT {values} FROM {stage} AS s", constants),
        ]
    keys = [quote(dialect, key) for key in day.keys]
    last_of_each_key = f"SELECT MAX({quote(dialect, ROW_NUMBER)}) FROM {stage} GROUP BY {', '.join(keys)}"
    matched = " AND ".join(f"t.{key} = s.{key}" for key in keys)
    updated = [name for name in copied if name not in day.keys]
    assignments = ", ".join(
        [
            *(f"{quote(dialect, name)} = {value(name)}" for name in updated),
            f"{quote(dialect, '_loaded_at')} = {at_utc('?')}",
            f"{quote(dialect, '_partition')} = ?",
        ]
    )
    # HOLDLOCK (serializable) holds the key ranges read, so no other writer can insert a key between the
    # UPDATE finding it missing and the INSERT adding it.
    return [
        (f"DELETE FROM {stage} WHERE {quote(dialect, ROW_NUMBER)} NOT IN ({last_of_each_key})", ()),
        (f"UPDATE t SET {assignments} FROM {target} AS t WITH (UPDLOCK, HOLDLOCK) JOIN {stage} AS s ON {matched}", constants),
        (
            f"INSERT INTO {target} ({names}) SELECT {values} FROM {stage} AS s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WITH (UPDLOCK, HOLDLOCK) WHERE {matched})",
            constants,
        ),
    ]


def staged_batches(batches: Iterator[pl.DataFrame], day: DayLoad) -> Iterator[pl.DataFrame]:
    """Each batch in the stage's column order and types, zoned timestamps as UTC without a zone, numbered."""
    warehouse = for_dialect("mssql")
    dtypes = {column.name: warehouse.read_dtype(column.type) for column in day.stage.columns}
    zoned, offset = day.zoned, 0
    for batch in batches:
        check_floats(day.target, batch, warehouse)
        check_keys_present(day.target, day.partition_key, batch, day.keys)
        batch = batch.with_columns(
            *(pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None) for name in zoned),
            pl.int_range(offset, offset + batch.height, dtype=pl.Int64).alias(ROW_NUMBER),
        )
        casts = {name: dtype for name, dtype in dtypes.items() if dtype is not None and name not in zoned and batch.schema[name] != dtype}
        yield batch.select(list(dtypes)).cast(casts)
        offset += batch.height


def insert_statement(dialect: sa.Dialect, stage: sa.Table) -> str:
    names = [column.name for column in stage.columns]
    return f"INSERT INTO {table_sql(dialect, stage)} ({', '.join(quote(dialect, name) for name in names)}) VALUES ({', '.join('?' for _ in names)})"


def array_fill(conn: sa.Connection, stage: sa.Table, batches: Iterator[pl.DataFrame]) -> None:
    """Parameter arrays: pyodbc's `fast_executemany` (one ODBC array per batch), or mssql-python's executemany,
    which binds column-wise already."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        if conn.dialect.driver == "pyodbc":
            cursor.fast_executemany = True
        statement = insert_statement(conn.dialect, stage)
        for batch in batches:
            cursor.executemany(statement, batch.rows())
    finally:
        cursor.close()


def bulk_fill(conn: sa.Connection, stage: sa.Table, batches: Iterator[pl.DataFrame]) -> None:
    """mssql-python's TDS bulk copy of Arrow batches, over a connection of its own into the committed stage.
    Columns map by position, which the stage was made in; NULLs stay NULL; the stage is ours, so a table lock
    costs no one."""
    import pyarrow as pa

    arrow = (batch.to_arrow(compat_level=pl.CompatLevel.oldest()) for batch in batches)
    first = next(arrow, None)
    if first is None:
        return
    reader = pa.RecordBatchReader.from_batches(first.schema, (part for table in itertools.chain([first], arrow) for part in table.to_batches()))
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.bulkcopy_arrow(table_sql(conn.dialect, stage), reader, batch_size=BULK_ROWS, timeout=0, keep_nulls=True, table_lock=True)
    finally:
        cursor.close()


def load_day(engine: sa.Engine, request: LoadRequest) -> tuple[sa.Table, list[str]]:
    """Load one day (see the module's docstring)."""
    frame, keys, log = request.frame, request.keys, request.log
    frame_schema = frame.collect_schema()
    with engine.connect() as conn:
        ddl, planned, _ = table_plan(conn, request.schema, request.table, frame_schema, partitioned=False, unique_keys=keys)
        # The stage lives in the target's schema, so a new schema comes first, outside the load's transaction.
        for statement in ddl:
            if isinstance(statement, sa.schema.CreateSchema):
                conn.execute(statement)
        day = DayLoad(
            planned,
            stage_for(planned, frame_schema.names(), uuid.uuid4().hex[: warehouse_names.STAGE_ID_DIGITS]),
            request.partition_key,
            request.loaded_at,
            request.write_mode,
            keys,
        )
        # No schema is the login's default one, which a target written with that schema's name must share locks with.
        lock_schema = planned.schema or conn.dialect.default_schema_name
        stage_lock = applock_resource("stage", lock_schema, day.stage.name)
        try:
            _drop_leftover_stages(conn, planned, lock_schema, log)
            _granted(conn, applock_statement("Session", 0), stage_lock, f"stage {day.stage.name}")
            day.stage.create(conn)
            conn.commit()
            _fill(conn, day, frame, request.batches, log)
            # The rows went in on the raw cursor, which SQLAlchemy's transaction bookkeeping does not see.
            conn.connection.commit()
            table, added = _move(conn, day, frame_schema, applock_resource("load", lock_schema, planned.name))
            conn.commit()
            return table, added
        except BaseException:
            _rollback(conn, log)
            _drop_stage(conn, day.stage, log)
            raise
        finally:
            _release(conn, stage_lock, log)


def _fill(conn: sa.Connection, day: DayLoad, frame: pl.LazyFrame, batches, log) -> None:
    if uses_bulk_copy(conn.dialect):
        try:
            bulk_fill(conn, day.stage, staged_batches(batches(frame, BULK_ROWS), day))
            return
        except (WarehouseTypeError, WriteModeError):
            raise  # the day's own values, which parameter arrays would refuse the same way
        except Exception as error:
            if log:
                log.warning(f"{day.target.fullname} {day.partition_key}: the bulk copy was refused ({error}); loading by parameter arrays instead")
            conn.exec_driver_sql(f"TRUNCATE TABLE {table_sql(conn.dialect, day.stage)}")
            conn.commit()
    array_fill(conn, day.stage, staged_batches(batches(frame, ARRAY_ROWS), day))


def _move(conn: sa.Connection, day: DayLoad, frame_schema: pl.Schema, target_lock: str) -> tuple[sa.Table, list[str]]:
    """The one transaction that changes the target: lock it, make it fit the day, move the rows, drop the stage."""
    _granted(conn, applock_statement("Transaction", TARGET_LOCK_TIMEOUT_MS), target_lock, f"table {day.target.fullname}")
    ddl, table, added = table_plan(conn, day.target.schema, day.target.name, frame_schema, partitioned=False, unique_keys=day.keys)
    for statement in ddl:
        conn.execute(statement)
    # A table made just now has its keys index from the plan; one that existed may lack it.
    if day.write_mode == "merge" and not any(isinstance(statement, sa.schema.CreateTable) for statement in ddl):
        ensure_keys_index(conn, table, day.keys)
    for statement, parameters in move_statements(conn.dialect, day):
        conn.exec_driver_sql(statement, parameters)
    day.stage.drop(conn)
    return table, added


def _granted(conn: sa.Connection, statement: str, resource: str, what: str) -> None:
    code = conn.exec_driver_sql(statement, (resource,)).scalar()
    if code is None or code < 0:
        raise MssqlLoadError(
            f"{what}: SQL Server did not grant the app lock {resource!r} (sp_getapplock returned {code}; -1 means another load held it "
            "for the whole wait) (fix: look for a long-running load of this table in sys.dm_tran_locks, or run the load again)"
        )


def _rollback(conn: sa.Connection, log) -> None:
    # A broken connection cannot roll back, and the server has rolled back with the session; the load's own error is the one to raise.
    try:
        conn.rollback()
    except sa.exc.SQLAlchemyError as error:
        # Invalidated, the connection is not rolled back again (and raising) when it closes.
        conn.invalidate(error)
        if log:
            log.debug(f"rollback after a failed load: {error}")


def _release(conn: sa.Connection, resource: str, log) -> None:
    try:
        conn.exec_driver_sql(RELEASE_STAGE_LOCK, (resource,))
        conn.commit()
    except sa.exc.SQLAlchemyError as error:
        # The lock belongs to the session; if the session is broken the server has released it with the session.
        if log:
            log.debug(f"releasing {resource}: {error}")


def _drop_stage(conn: sa.Connection, stage: sa.Table, log) -> None:
    try:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table_sql(conn.dialect, stage)}")
        conn.commit()
    except sa.exc.SQLAlchemyError as error:
        # The next load of the table drops it once this session is gone.
        if log:
            log.warning(f"could not drop the stage {stage.name} after a failed load ({error}); the next load of the table drops it")


def _drop_leftover_stages(conn: sa.Connection, target: sa.Table, lock_schema: str | None, log) -> None:
    prefix = warehouse_names.load_stage_prefix("mssql", target.name)
    names = conn.exec_driver_sql(leftover_stages_statement(), (target.schema, like_prefix(prefix))).scalars().all()
    for name in names:
        if not warehouse_names.is_load_stage("mssql", target.name, name):
            continue
        stage = sa.Table(name, sa.MetaData(), schema=target.schema)
        resource = applock_resource("stage", lock_schema, name)
        if conn.exec_driver_sql(drop_if_unowned_statement(conn.dialect, stage), (resource, resource)).scalar() >= 0 and log:
            log.info(f"dropped {name}, the stage of a load of {target.fullname} that did not finish")
    conn.commit()
