"""What the stream kinds (Kafka, RabbitMQ streams, NATS JetStream) share: a day of a retained log, the same rows on every run.

A message belongs to the day of its event time: the broker's timestamp, or a header or body field the producer
set. Each kind seeks its log to the day's start by the time the broker logged each message (never before the
message's own time) and hands the messages over in log order; `day_frames` keeps those of the day and stops at
the first message logged at or after the day's end plus `late_seconds`, or when the kind says the log is
exhausted. The log time only grows along the log, so nothing of the day lies beyond that message: a day re-runs
to the same rows in the same order, and a message published late with an old timestamp is in its day on the next
run of that day, as long as it was logged within `late_seconds` of the day's end.
"""

import base64
import datetime as dt
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from pydantic import Field, model_validator

from etl_resources.config.model import BaseSource
from etl_resources.contract.rules import PARSE_ERROR
from etl_resources.progress import Progress
from etl_resources.sources.records import RECORD_COLUMN, Nested, as_json, json_path, parse_json, record_row, rows_frame

STREAM_COLUMNS = {
    "_stream": pl.String,
    "_stream_partition": pl.Int64,
    "_offset": pl.Int64,
    "_timestamp": pl.Datetime("us", "UTC"),
    "_key": pl.String,
    "_headers": pl.String,
}
VALUE_COLUMN = "_value"
EPOCH_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000}


class StreamError(RuntimeError):
    """A stream could not be read: the broker refused, the topic/stream is missing, or the day could not be finished."""


class StreamSource(BaseSource):
    """The fields every stream kind shares; a kind adds `kind`, where its log is and how to sign in."""

    # json: the body is a JSON document, its fields are columns; text: the body as one UTF-8 `_value`; bytes: as is.
    format: Literal["json", "text", "bytes"] = "json"
    nested: Nested = "json"
    # Where a message's event time is read; default: the broker's timestamp of the message.
    timestamp_header: str | None = None
    timestamp_field: str | None = None
    # A number in a header or field counts these units since 1970-01-01 UTC; text is ISO 8601 (UTC without an offset).
    timestamp_unit: Literal["s", "ms", "us"] = "ms"
    late_seconds: float = Field(default=3600.0, ge=0)
    # The log is exhausted when no message arrives for this long.
    idle_seconds: float = Field(default=5.0, gt=0, le=600)
    max_seconds: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _one_event_time(self) -> "StreamSource":
        if self.timestamp_header and self.timestamp_field:
            raise ValueError("give `timestamp_header` or `timestamp_field`, not both: a message has one event time")
        if self.timestamp_field and self.format != "json":
            raise ValueError(f"`timestamp_field` reads the JSON body, so it needs `format: json` (not {self.format}); use `timestamp_header` instead")
        return self

    @property
    def event_time_from(self) -> str:
        if self.timestamp_header:
            return f"header {self.timestamp_header!r}"
        if self.timestamp_field:
            return f"field {self.timestamp_field!r}"
        return "the broker's timestamp"


@dataclass(frozen=True)
class Message:
    """One message as a broker returned it, times in UTC: `timestamp` is the message's own (the default event time),
    `logged` when the broker appended it (it only grows along the log; None where the broker does not say, so the
    log is read to its end), `offset` its place in the log."""

    stream: str
    partition: int | None
    offset: int
    timestamp: dt.datetime | None
    body: bytes
    key: bytes | str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    logged: dt.datetime | None = None


def event_time(value: Any, unit: str) -> dt.datetime:
    """A header's or field's time as an aware UTC datetime; ValueError with the reason when it is none."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value!r} is not a time")
        seconds, rest = divmod(int(value), EPOCH_UNITS[unit])
        micros = rest * (1_000_000 // EPOCH_UNITS[unit])
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds, microseconds=micros)
    if isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value.strip())
        return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    raise ValueError(f"{value!r} is not a time")


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return bytes(value).decode()
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not UTF-8 text ({base64.b64encode(bytes(value)).decode()!r} in base64)") from None


def _row(source: StreamSource, message: Message) -> tuple[dict[str, Any], dt.datetime | None]:
    """The message as a row (metadata, then body) and its event time.

    A message that cannot be read is a parse error; one without a readable event time is placed by the broker's."""
    meta: dict[str, Any] = {"_stream": message.stream, "_stream_partition": message.partition, "_offset": message.offset, "_timestamp": message.timestamp}
    errors: list[str] = []
    try:
        meta["_key"] = None if message.key is None else _text(message.key, "the key")
    except ValueError as err:
        meta["_key"], errors = None, [*errors, str(err)]
    headers: dict[str, str] = {}
    for name, value in message.headers.items():
        try:
            headers[name] = _text(value, f"header {name!r}") if not isinstance(value, (int, float, bool)) else str(value)
        except ValueError as err:
            errors.append(str(err))
    meta["_headers"] = as_json(headers) if headers else None

    body: dict[str, Any] = {}
    document: Any = None
    if source.format == "bytes":
        body = {VALUE_COLUMN: message.body}
    else:
        try:
            text = _text(message.body, "the body")
            if source.format == "text":
                body = {VALUE_COLUMN: text}
            else:
                document = parse_json(text)
                body = record_row(document, source.nested)
                body.pop(RECORD_COLUMN)
                clash = sorted(set(body) & set(STREAM_COLUMNS))
                if clash:
                    errors.append(f"the body has a field {clash[0]!r}, the name of the message's own column (fix: rename it where the message is produced)")
                    body = {name: value for name, value in body.items() if name not in STREAM_COLUMNS}
        except ValueError as err:  # json.JSONDecodeError is one
            errors.append(f"the body is not {'JSON' if source.format == 'json' else 'text'}: {err}")

    when = message.timestamp
    try:
        if source.timestamp_header:
            if source.timestamp_header not in message.headers:
                raise ValueError("missing")
            when = event_time(message.headers[source.timestamp_header], source.timestamp_unit)
        elif source.timestamp_field and document is not None:
            found = json_path(document, source.timestamp_field) if isinstance(document, (dict, list)) else None
            if found is None:
                raise ValueError("missing")
            when = event_time(found, source.timestamp_unit)
    except ValueError as err:
        errors.append(f"event time from {source.event_time_from}: {err}; the message is kept in the day of the broker's timestamp")
    meta["_timestamp"] = when

    original = {**meta, "body": base64.b64encode(message.body).decode() if source.format == "bytes" else _lossless_text(message.body)}
    row = {**meta, **body, RECORD_COLUMN: as_json(original), PARSE_ERROR: "; ".join(errors) or None}
    return row, when


def _lossless_text(body: bytes) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(body).decode()


def empty_frame(source: StreamSource) -> pl.DataFrame:
    value = {VALUE_COLUMN: pl.Binary if source.format == "bytes" else pl.String} if source.format != "json" else {}
    return pl.DataFrame(schema={**STREAM_COLUMNS, **value, RECORD_COLUMN: pl.String, PARSE_ERROR: pl.String})


def _frame(source: StreamSource, rows: list[dict[str, Any]]) -> pl.DataFrame:
    frame = rows_frame(rows)
    empty = empty_frame(source)
    fixed = [pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name) for name, dtype in empty.schema.items()]
    return frame.with_columns(fixed).select(*STREAM_COLUMNS, pl.exclude(*STREAM_COLUMNS))


def day_frames(
    source: StreamSource,
    logs: Iterable[Iterable[Message]],
    window: tuple[dt.datetime, dt.datetime],
    log: Any = None,
) -> Iterator[pl.DataFrame]:
    """The day's messages in log order, in frames of at most `batch_size` rows; at least one frame.

    `logs` holds one iterator per partition of the log (one for a log without partitions), each from the day's
    start in log order and ending when the log is exhausted; an iterator is closed at its first message logged past
    the day's end plus `late_seconds`, so a kind's generator releases its consumer in a `finally`. A message delivered
    twice (same partition and offset) is kept once.
    """
    start, end = window
    stop_at = end + dt.timedelta(seconds=source.late_seconds)
    deadline = time.monotonic() + source.max_seconds
    progress = Progress(log, f"source '{source.name}' {start.date()}")
    seen: set[tuple[int | None, int]] = set()
    rows: list[dict[str, Any]] = []
    yielded = False
    for messages in logs:
        iterator = iter(messages)
        try:
            for message in iterator:
                if time.monotonic() > deadline:
                    raise StreamError(
                        f"source '{source.name}', field 'max_seconds': the day {start.date()} was not read within {source.max_seconds:g}s "
                        f"({progress.rows:,} messages so far); nothing was written (fix: raise `max_seconds`)"
                    )
                if message.logged is not None and message.logged >= stop_at:
                    break
                row, when = _row(source, message)
                if (when is not None and when < start) or (when is not None and when >= end) or (message.partition, message.offset) in seen:
                    continue
                seen.add((message.partition, message.offset))
                rows.append(row)
                if len(rows) >= source.batch_size:
                    progress.add(len(rows))
                    yield _frame(source, rows)
                    rows, yielded = [], True
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
    if rows or not yielded:
        progress.add(len(rows))
        yield _frame(source, rows) if rows else empty_frame(source)
    if log is not None:
        log.info(f"source '{source.name}' {start.date()}: {progress.summary()} from the log, event time from {source.event_time_from}")
