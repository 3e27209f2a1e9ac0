"""Binary COPY into PostgreSQL from Arrow batches: pgpq encodes each batch, psycopg sends the stream.

pgpq's Rust encoder needs about a third of the CPU that ADBC's ingest spent per row; on a 2-core host the
client and the server backend share the cores, so that CPU goes to the server's side of the COPY instead.
"""

from collections.abc import Iterable, Iterator

import pgpq
import psycopg
import pyarrow as pa
import sqlalchemy as sa

from etl_resources.warehouse.types import WarehouseTypeError


def connect(url: sa.URL) -> psycopg.Connection:
    """A psycopg connection (autocommit off) from a SQLAlchemy URL of any PostgreSQL driver; libpq takes it as is."""
    return psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))


def _microseconds(field: pa.Field) -> pa.Field:
    """PostgreSQL keeps times to the microsecond; polars' times (and some sources' timestamps) come in nanoseconds."""
    if pa.types.is_time64(field.type) and field.type.unit == "ns":
        return field.with_type(pa.time64("us"))
    if pa.types.is_timestamp(field.type) and field.type.unit == "ns":
        return field.with_type(pa.timestamp("us", field.type.tz))
    if pa.types.is_duration(field.type) and field.type.unit == "ns":
        return field.with_type(pa.duration("us"))
    return field


def encoded(batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    """The COPY BINARY stream of `batches`: a header, a chunk per batch, the trailer; nothing at all for no batch."""
    encoder = schema = None
    for batch in batches:
        if encoder is None:
            schema = pa.schema([_microseconds(field) for field in batch.schema])
            encoder = pgpq.ArrowToPostgresBinaryEncoder(schema)
            yield encoder.write_header()
        yield encoder.write_batch(batch if batch.schema == schema else batch.cast(schema, safe=False))
    if encoder is not None:
        yield encoder.finish()


def copy_statement(dialect: sa.Dialect, table: sa.Table, columns: list[str], freeze: bool = False) -> str:
    """`freeze` (only for a table made in this transaction) writes the rows frozen and all-visible, so neither
    the first query after the commit nor autovacuum rewrites every page of them again."""
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    return f"COPY {dialect.identifier_preparer.format_table(table)} ({names}) FROM STDIN (FORMAT binary{', FREEZE' if freeze else ''})"


def copy_chunks(cursor: psycopg.Cursor, statement: str, chunks: Iterator[bytes]) -> None:
    """Send an encoded stream; an empty one sends nothing (COPY wants at least the header)."""
    first = next(chunks, None)
    if first is None:
        return
    try:
        with cursor.copy(statement) as copy:
            copy.write(first)
            for chunk in chunks:
                copy.write(chunk)
    except psycopg.errors.CharacterNotInRepertoire as err:
        # PostgreSQL text cannot hold a NUL character, which other sources (SQLite, files, APIs) can send.
        where = (err.diag.context or "").strip().splitlines()[0]
        raise WarehouseTypeError(
            f"{where}: {err.diag.message_primary} (fix: PostgreSQL text cannot hold the NUL character; remove it in the "
            "source's query, e.g. replace(col, char(0), ''), or load into another warehouse)"
        ) from None
