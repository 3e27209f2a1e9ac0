"""Extract a SQL table or query through SQLAlchemy as a stream of polars frames, one per batch."""

import datetime as dt
from collections.abc import Iterator

import adbc_driver_manager
import polars as pl
import pyarrow as pa
import sqlalchemy as sa

from etl_resources.adbc import connect_adbc
from etl_resources.config import SqlSource
from etl_resources.engines import create_engine
from etl_resources.secrets import redact
from etl_resources.transient import is_transient_connect_error, is_transient_database_error
from etl_resources.type_mapping import polars_dtype

# The driver's default of 16 MB record batches costs about 40 MB more peak memory and reads no faster.
ADBC_BATCH_BYTES = 4 * 1024 * 1024


class SourceUnavailableError(RuntimeError):
    """The source database could not be reached or the extract query failed; `transient` if trying again may work."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(redact(message))
        self.transient = transient


def build_select(
    source: SqlSource,
    conn: sa.Connection,
    window: tuple[dt.datetime, dt.datetime] | None,
    decimals_as_text: bool = False,
) -> tuple[sa.Select, dict[str, pl.DataType]]:
    """The SELECT for one partition, and the polars types known from the table's reflected columns.

    `decimals_as_text` has the server render decimal columns as text, which the columnar reader takes
    faster than PostgreSQL's binary numeric; `known` turns them back into exact decimals.
    """
    if source.table:
        schema, _, name = source.table.rpartition(".")
        table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
        selectable: sa.FromClause = table
        known = {c.name: dtype for c in table.columns if (dtype := polars_dtype(c.type, conn.dialect.name)) is not None}
        statement = sa.select(
            *(sa.cast(c, sa.Text).label(c.name) if decimals_as_text and isinstance(known.get(c.name), pl.Decimal) else c for c in table.columns)
        )
    else:
        columns = [sa.column(source.watermark_column)] if source.watermark_column else []
        selectable = sa.text(source.query).columns(*columns).subquery("src")
        known = {}
        # SELECT * over a query: its columns are unknown until it runs.
        statement = sa.select(sa.literal_column("*")).select_from(selectable)
    if source.mode == "incremental" and window is not None:
        watermark = selectable.c[source.watermark_column]
        start, end = window
        if conn.dialect.name == "sqlite" or not getattr(watermark.type, "timezone", True):
            start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
        statement = statement.where(watermark >= start, watermark < end)
    return statement, known


def _frame(rows: list[sa.Row], columns: list[str], known: dict[str, pl.DataType]) -> pl.DataFrame:
    overrides = {name: known[name] for name in columns if name in known}
    return pl.DataFrame(
        [tuple(row) for row in rows],
        schema=columns,
        schema_overrides=overrides,
        orient="row",
        infer_schema_length=None,
    )


def extract(
    source: SqlSource,
    url: sa.URL,
    window: tuple[dt.datetime, dt.datetime] | None,
) -> Iterator[pl.DataFrame]:
    """Yield the partition's rows in frames of `source.batch_size` rows; always at least one frame, maybe empty.

    PostgreSQL is read columnar through ADBC (COPY in binary, decoded to Arrow in C++); other dialects
    through a SQLAlchemy server-side cursor (`stream_results`). Either way memory is bounded by the batch.
    """
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    redacted = url.render_as_string(hide_password=True)
    try:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as err:
            raise SourceUnavailableError(
                f"source '{source.name}': cannot connect to {redacted}: {_first_line(err)} "
                "(fix: check the database is up and the `connection` URL and its secrets are right)",
                transient=is_transient_connect_error(err),
            ) from None
        with conn:
            postgres = conn.dialect.name == "postgresql"
            try:
                statement, known = build_select(source, conn, window, decimals_as_text=postgres)
            except sa.exc.NoSuchTableError as err:
                raise SourceUnavailableError(f"source '{source.name}', field 'table': table {err} does not exist in {redacted}") from None
            if postgres:
                sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
                frames = _adbc_frames(source, url, sql, known, redacted)
            else:
                frames = _cursor_frames(source, conn, statement, known, redacted)
            yield from _rechunk(frames, source.batch_size)
    finally:
        engine.dispose()


def _cursor_frames(source: SqlSource, conn: sa.Connection, statement: sa.Select, known: dict[str, pl.DataType], redacted: str) -> Iterator[pl.DataFrame]:
    try:
        result = conn.execution_options(stream_results=True, max_row_buffer=source.batch_size).execute(statement)
    except sa.exc.DBAPIError as err:
        raise SourceUnavailableError(
            f"source '{source.name}': extract query failed on {redacted}: {_first_line(err)}", transient=is_transient_database_error(err)
        ) from None
    columns = list(result.keys())
    yielded = False
    for rows in result.partitions(source.batch_size):
        yielded = True
        yield _frame(rows, columns, known)
    if not yielded:
        yield _frame([], columns, known)


def _adbc_frames(source: SqlSource, url: sa.URL, sql: str, known: dict[str, pl.DataType], redacted: str) -> Iterator[pl.DataFrame]:
    try:
        with connect_adbc(url) as conn, conn.cursor() as cursor:
            cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(ADBC_BATCH_BYTES)})
            cursor.execute(sql)
            reader = cursor.fetch_record_batch()
            yielded = False
            for batch in reader:
                yielded = True
                yield _typed_arrow(batch, known)
            if not yielded:
                yield _typed_arrow(reader.schema.empty_table(), known)
    except (adbc_driver_manager.Error, OSError) as err:
        # Arrow's reader reports a stream that broke mid-way (a dropped connection) as an OSError.
        raise SourceUnavailableError(
            f"source '{source.name}': extract query failed on {redacted}: {_first_line(err)}",
            transient=isinstance(err, OSError) or is_transient_database_error(err),
        ) from None


def _typed_arrow(batch, known: dict[str, pl.DataType]) -> pl.DataFrame:
    """Arrow to polars; decimals arrive as text (cast by us, or PostgreSQL `numeric` in a query) and get their type back."""
    columns = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        opaque = isinstance(field.type, pa.BaseExtensionType)
        series = pl.from_arrow(column.storage if opaque else column)
        target = known.get(field.name)
        if isinstance(target, pl.Decimal) and series.dtype == pl.String:
            series = series.cast(target)
        elif opaque:
            series = series.cast(target) if target is not None else series.str.to_decimal()
        columns.append(series.alias(field.name))
    return pl.DataFrame(columns)


def _rechunk(frames: Iterator[pl.DataFrame], size: int) -> Iterator[pl.DataFrame]:
    """Frames of exactly `size` rows (the last may be shorter), whatever batches the driver returns.

    With no rows at all, the driver's empty frame passes through so the partition still gets its schema.
    """
    pending: list[pl.DataFrame] = []
    count, yielded, empty = 0, False, None
    for frame in frames:
        if frame.height == 0:
            empty = frame if empty is None else empty
            continue
        while frame.height:
            take = min(size - count, frame.height)
            pending.append(frame.slice(0, take))
            count += take
            frame = frame.slice(take)
            if count == size:
                yield pl.concat(pending)
                pending, count, yielded = [], 0, True
    if pending:
        yield pl.concat(pending)
    elif not yielded and empty is not None:
        yield empty


def _first_line(err: Exception) -> str:
    return str(getattr(err, "orig", err)).strip().splitlines()[0]
