"""Files dropped into a landing folder (local, ADLS, SFTP, FTP, WebDAV, HTTP): find a day's files and read them as frames.

CSV and JSON lines arrive as text columns (the source's contract types them) with each row's original
text in `_record`; a row that cannot be parsed keeps its text and gets `__parse_error`, so the contract
turns it into a reject instead of the file failing the run. A Parquet file keeps its own types.
"""

import csv
import datetime as dt
import fnmatch
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl

from etl_resources.contract.rules import PARSE_ERROR as PARSE_ERROR_COLUMN
from etl_resources.lake.store import Lake
from etl_resources.sources.files.landing import LandingError, is_remote, landing_error
from etl_resources.sources.files.model import FileSource
from etl_resources.sources.records import RECORD_COLUMN, parse_json

# Where each filesystem's listing keeps a file's modification time or tag, in the order they are asked.
VERSION_KEYS = ("mtime", "last_modified", "modify", "modified", "etag")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class LandingFile:
    name: str
    path: str
    day: str | None
    version: str  # size and modification time (or ETag): a file dropped again with new content is new


def landing_files(landing: Lake, source: FileSource) -> list[LandingFile]:
    """The files in the landing folder that match the source's pattern, oldest name first."""
    try:
        entries = _listing(landing, source)
    except Exception as err:
        raise landing_error(source, err, "cannot list the landing folder") from err
    date_pattern = re.compile(source.date_pattern)
    files = []
    for entry in entries:
        name = entry.get("filename") or entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry["type"] != "file" or name.startswith((".", "_")) or not fnmatch.fnmatch(name, source.pattern):
            continue
        modified = next((entry[key] for key in VERSION_KEYS if entry.get(key)), "")
        files.append(LandingFile(name=name, path=entry["name"], day=_day(date_pattern, name), version=f"{entry.get('size')}:{modified}"))
    return sorted(files, key=lambda f: f.name)


def _listing(landing: Lake, source: FileSource) -> list[dict]:
    try:
        return landing.fs.ls(landing.root, detail=True)
    except FileNotFoundError:
        if is_remote(source.landing):
            raise LandingError(
                f"source '{source.name}': the landing folder {source.landing} does not exist on the server "
                "(fix: correct the path in `landing`, or create the folder; an empty folder is an empty day)"
            ) from None
        return []


def _day(pattern: re.Pattern, name: str) -> str | None:
    match = pattern.search(name)
    if not match:
        return None
    try:
        return dt.date.fromisoformat(match["date"]).isoformat()
    except ValueError:
        return None


def file_format(source: FileSource, name: str) -> str:
    if source.format:
        return source.format
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in FORMATS:
        raise ValueError(
            f"source '{source.name}': cannot tell the format of landing file {name!r} (fix: name it .csv, .jsonl or .parquet, or set `format` on the source)"
        )
    return FORMATS[suffix]


def read_day(landing: Lake, source: FileSource, day: str, log=None) -> Iterator[pl.DataFrame]:
    """Every landing file of `day`, in frames of at most `batch_size` rows; at least one frame, maybe empty."""
    files = [f for f in landing_files(landing, source) if f.day == day]
    if log:
        log.info(f"{source.name} {day}: {len(files)} landing file(s): {', '.join(f.name for f in files) or '(none)'}")
    yielded = False
    for file in files:
        for frame in _read_file(landing, source, file):
            yielded = True
            yield frame
    if not yielded:  # no file that day, or only files with a header and no rows
        yield pl.DataFrame(schema=dict.fromkeys(source.contract.columns, pl.String) | {RECORD_COLUMN: pl.String, PARSE_ERROR_COLUMN: pl.String})


def _read_file(landing: Lake, source: FileSource, file: LandingFile) -> Iterator[pl.DataFrame]:
    """One file in batches, streamed from storage, so a file bigger than memory is read a batch at a time."""
    kind = file_format(source, file.name)
    try:
        yield from _read_open(landing, source, file, kind)
    except FileNotFoundError:
        raise LandingError(
            f"source '{source.name}': landing file {file.name!r} in {source.landing} was listed but is gone "
            "(fix: run the day again once the sender has finished; a sender should write a file under another name, "
            "e.g. starting with '.', and rename it when complete)"
        ) from None
    except Exception as err:
        raise landing_error(source, err, f"cannot read {file.name!r} from") from err


def _read_open(landing: Lake, source: FileSource, file: LandingFile, kind: str) -> Iterator[pl.DataFrame]:
    with landing.fs.open(file.path, "rb") as raw:
        if kind == "parquet":
            yield from _parquet_batches(raw, file, source.batch_size)
            return
        lines = (line.rstrip("\r\n") for line in io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=""))
        rows = _csv_rows(lines, source.csv_delimiter, file.name) if kind == "csv" else _jsonl_rows(lines, file.name)
        batch: list[dict] = []
        for row in rows:
            batch.append(row)
            if len(batch) == source.batch_size:
                yield _text_frame(batch)
                batch = []
        if batch:
            yield _text_frame(batch)


def _parquet_batches(raw, file: LandingFile, batch_size: int) -> Iterator[pl.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(raw)
    except pa.ArrowException as err:  # not a Parquet file; a storage error fails the day instead
        yield _unreadable(file, f"parquet: cannot read the file: {str(err).splitlines()[0]}")
        return
    yielded = False
    for batch in parquet.iter_batches(batch_size=batch_size):
        yielded = True
        yield pl.from_arrow(batch)
    if not yielded:
        yield pl.from_arrow(parquet.schema_arrow.empty_table())


def _unreadable(file: LandingFile, reason: str) -> pl.DataFrame:
    return pl.DataFrame({RECORD_COLUMN: [json.dumps({"file": file.name})], PARSE_ERROR_COLUMN: [reason]})


def _text_frame(rows: list[dict]) -> pl.DataFrame:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return pl.DataFrame({name: [row.get(name) for row in rows] for name in columns}, schema=dict.fromkeys(columns, pl.String))


def _csv_rows(lines: Iterator[str], delimiter: str, name: str) -> Iterator[dict]:
    first = next(lines, None)
    if first is None:
        return
    header = next(csv.reader([first], delimiter=delimiter))
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        try:
            values = next(csv.reader([line], delimiter=delimiter))
        except csv.Error as err:
            yield {RECORD_COLUMN: line, PARSE_ERROR_COLUMN: f"csv: {name} line {number}: {err}"}
            continue
        if len(values) != len(header):
            yield {RECORD_COLUMN: line, PARSE_ERROR_COLUMN: f"csv: {name} line {number} has {len(values)} fields, the header {len(header)}"}
            continue
        yield dict(zip(header, values, strict=True)) | {RECORD_COLUMN: line, PARSE_ERROR_COLUMN: None}


def _jsonl_rows(lines: Iterator[str], name: str) -> Iterator[dict]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = parse_json(line)
        except json.JSONDecodeError as err:
            yield {RECORD_COLUMN: line, PARSE_ERROR_COLUMN: f"jsonl: {name} line {number} is not JSON: {err.msg}"}
            continue
        if not isinstance(value, dict):
            yield {RECORD_COLUMN: line, PARSE_ERROR_COLUMN: f"jsonl: {name} line {number} is not a JSON object"}
            continue
        yield {key: _text(v) for key, v in value.items()} | {RECORD_COLUMN: line, PARSE_ERROR_COLUMN: None}


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
