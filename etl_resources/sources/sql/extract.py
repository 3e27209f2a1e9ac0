"""Extract a SQL table or query through SQLAlchemy as a stream of polars frames, one per batch."""

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal

import adbc_driver_manager
import polars as pl
import sqlalchemy as sa

from etl_resources.databases.engines import create_engine, literal_dialect
from etl_resources.databases.transient import is_transient_connect_error, is_transient_database_error
from etl_resources.secrets import redact
from etl_resources.sources.sql.adbc import connect_adbc, text_casts
from etl_resources.sources.sql.dialects import SourceDialect, polars_dtype, source_dialect
from etl_resources.sources.sql.model import SqlSource

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
) -> tuple[sa.Select, dict[str, pl.DataType]]:
    """The SELECT for one partition, and the polars types known from the table's reflected columns."""
    table = None
    if source.table:
        schema, _, name = source.table.rpartition(".")
        table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
    return partition_select(source, table, conn.dialect.name, window)


def partition_select(
    source: SqlSource,
    table: sa.Table | None,
    dialect: str,
    window: tuple[dt.datetime, dt.datetime] | None,
) -> tuple[sa.Select, dict[str, pl.DataType]]:
    """The SELECT of the source's table (as reflected) or query for one partition on `dialect`, and the polars
    types its declarations give."""
    flavour = source_dialect(dialect)
    if table is not None:
        selectable: sa.FromClause = table
        known = {c.name: dtype for c in table.columns if (dtype := polars_dtype(c.type, dialect)) is not None}
        statement = sa.select(*(_as_driver_reads(c, flavour) for c in table.columns))
    else:
        columns = [sa.column(source.watermark_column)] if source.watermark_column else []
        selectable = sa.text(source.query).columns(*columns).subquery("src")
        known = {}
        # SELECT * over a query: its columns are unknown until it runs.
        statement = sa.select(sa.literal_column("*")).select_from(selectable)
    if source.mode == "incremental" and window is not None:
        watermark = selectable.c[source.watermark_column]
        start, end = window
        if flavour.naive_bounds or not getattr(watermark.type, "timezone", True):
            start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
        statement = statement.where(watermark >= start, watermark < end)
    return statement, known


def _as_driver_reads(column: sa.Column, flavour: SourceDialect) -> sa.ColumnElement:
    """The value as the driver read it, where SQLAlchemy's own conversion would change it: the dialect's own
    columns first (see dialects.py); then a DOUBLE that asks for each float as a Decimal (a different value, which
    may not even fit a decimal), and JSON, which stays the text the source holds instead of parsed values."""
    read = flavour.read_as(column)
    if read is not None:
        return read
    if isinstance(column.type, sa.Float) and column.type.asdecimal:
        return sa.type_coerce(column, sa.Double()).label(column.name)
    if isinstance(column.type, sa.JSON):
        return sa.type_coerce(column, sa.Text()).label(column.name)
    return column


def _frame(rows: list[sa.Row], columns: list[str], known: dict[str, pl.DataType]) -> pl.DataFrame:
    overrides = {name: known[name] for name in columns if name in known}
    text = [i for i, name in enumerate(columns) if overrides.get(name) == pl.String]
    return pl.DataFrame(
        [_texts(tuple(row), text) for row in rows] if text else [tuple(row) for row in rows],
        schema=columns,
        schema_overrides=overrides,
        orient="row",
        infer_schema_length=None,
    )


# polars reports some values that do not fit (a decimal past 38 digits) as a RuntimeError from its bindings.
FRAME_ERRORS = (TypeError, OverflowError, RuntimeError, pl.exceptions.PolarsError)


def _checked_frame(source: SqlSource, rows: list[sa.Row], columns: list[str], known: dict[str, pl.DataType]) -> pl.DataFrame:
    """The batch as a frame, or an error naming the column whose values the lake cannot hold as they are."""
    try:
        frame = _frame(rows, columns, known)
    except FRAME_ERRORS as err:
        name = next((name for i, name in enumerate(columns) if not _builds(name, [row[i] for row in rows], known.get(name))), columns[0])
        raise SourceTypeError(source.name, name, str(err).splitlines()[0]) from None
    odd = [name for name, dtype in frame.schema.items() if dtype == pl.Object]
    if odd:
        value = frame.get_column(odd[0]).drop_nulls().head(1).to_list()
        raise SourceTypeError(source.name, odd[0], f"the driver returns {type(value[0]).__name__ if value else 'objects'} values, which have no lake type")
    return frame


def _builds(name: str, values: list, dtype: pl.DataType | None) -> bool:
    try:
        _frame([(value,) for value in values], [name], {name: dtype} if dtype is not None else {})
    except FRAME_ERRORS:
        return False
    return True


class SourceTypeError(ValueError):
    """A source value the lake has no exact type for; trying again cannot help."""

    def __init__(self, source: str, column: str, problem: str):
        super().__init__(
            f"source '{source}', column '{column}': {problem} "
            "(fix: select the column in a `query:` cast to a type the lake keeps, e.g. `CAST(col AS TEXT)`, `CAST(col AS CHAR)` on MySQL)"
        )


def _texts(row: tuple, positions: list[int]) -> tuple:
    """Values of the columns kept as exact text: wide decimals (or Oracle's integers of a NUMBER without precision)
    as their digits, uuids with hyphens, durations (MySQL TIME, Oracle INTERVAL DAY TO SECOND) as
    `[-]HH:MM:SS[.ffffff]`."""
    values = list(row)
    for i in positions:
        value = values[i]
        if isinstance(value, Decimal | uuid.UUID | int):
            values[i] = str(value)
        elif isinstance(value, dt.timedelta):
            values[i] = _duration_text(value)
    return tuple(values)


def _duration_text(value: dt.timedelta) -> str:
    sign, value = ("-", -value) if value < dt.timedelta(0) else ("", value)
    hours, rest = divmod(value, dt.timedelta(hours=1))
    minutes, rest = divmod(rest, dt.timedelta(minutes=1))
    seconds = rest.seconds
    fraction = f".{rest.microseconds:06d}" if rest.microseconds else ""
    return f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}{fraction}"


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
            flavour = source_dialect(conn.dialect.name)
            try:
                for sql in flavour.session:
                    conn.exec_driver_sql(sql)
                statement, known = build_select(source, conn, window)
            except sa.exc.NoSuchTableError as err:
                raise SourceUnavailableError(f"source '{source.name}', field 'table': table {err} does not exist in {redacted}") from None
            if flavour.reads_adbc:
                dialect = literal_dialect(conn.dialect)
                sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
                frames = _adbc_frames(source, url, sql, dialect.identifier_preparer, redacted)
            else:
                frames = _cursor_frames(source, conn, statement, known, redacted, flavour)
            yield from _rechunk(frames, source.batch_size)
    finally:
        engine.dispose()


def _cursor_frames(
    source: SqlSource, conn: sa.Connection, statement: sa.Select, known: dict[str, pl.DataType], redacted: str, flavour: SourceDialect
) -> Iterator[pl.DataFrame]:
    try:
        result = conn.execution_options(stream_results=True, max_row_buffer=source.batch_size).execute(statement)
    except sa.exc.DBAPIError as err:
        raise SourceUnavailableError(
            f"source '{source.name}': extract query failed on {redacted}: {_first_line(err)}", transient=is_transient_database_error(err)
        ) from None
    columns = list(result.keys())
    if source.query:
        known = flavour.result_dtypes(columns, result.cursor.description)
    yielded = False
    for rows in result.partitions(source.batch_size):
        yielded = True
        yield _checked_frame(source, rows, columns, known)
    if not yielded:
        yield _checked_frame(source, [], columns, known)


def _adbc_frames(source: SqlSource, url: sa.URL, sql: str, preparer: sa.sql.compiler.IdentifierPreparer, redacted: str) -> Iterator[pl.DataFrame]:
    """The result's types come from the server before any row: columns the driver cannot decode exactly are
    rendered as text by the server, the same way on every day, and typed from their declaration."""
    try:
        with connect_adbc(url) as conn, conn.cursor() as cursor:
            cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(ADBC_BATCH_BYTES)})
            schema = cursor.adbc_execute_schema(sql)
            casts, decimals = text_casts(schema)
            cursor.execute(_with_casts(sql, schema.names, casts, preparer))
            reader = cursor.fetch_record_batch()
            yielded = False
            for batch in reader:
                yielded = True
                yield _typed_arrow(source, batch, decimals)
            if not yielded:
                yield _typed_arrow(source, reader.schema.empty_table(), decimals)
    except (adbc_driver_manager.Error, OSError) as err:
        # Arrow's reader reports a stream that broke mid-way (a dropped connection) as an OSError.
        raise SourceUnavailableError(
            f"source '{source.name}': extract query failed on {redacted}: {_first_line(err)}",
            transient=isinstance(err, OSError) or is_transient_database_error(err),
        ) from None


def _with_casts(sql: str, names: list[str], casts: dict[str, str], preparer: sa.sql.compiler.IdentifierPreparer) -> str:
    if not casts:
        return sql
    quote = preparer.quote_identifier
    columns = ", ".join(f"src.{quote(name)}::{casts[name]} AS {quote(name)}" if name in casts else f"src.{quote(name)}" for name in names)
    return f"SELECT {columns} FROM ({sql}) AS src"


def _typed_arrow(source: SqlSource, batch, decimals: dict[str, pl.Decimal]) -> pl.DataFrame:
    """Arrow to polars; numeric columns arrive as the server's text and become Decimal where declared to fit."""
    columns = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        series = pl.from_arrow(column).alias(name)
        target = decimals.get(name)
        if target is not None and series.dtype == pl.String:
            try:
                series = series.cast(target)
            except pl.exceptions.InvalidOperationError:
                odd = series.filter(series.cast(target, strict=False).is_null() & series.is_not_null()).head(3).to_list()
                raise SourceTypeError(source.name, name, f"values {odd} do not fit {target}") from None
        columns.append(series)
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
