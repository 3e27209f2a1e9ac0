"""The Parquet lake: a local folder or an ADLS Gen2 container, reached through fsspec on the Blob API.

Layout of a dataset partition:
    <root>/<dataset>/date=YYYY-MM-DD/part-<write id>-NNNNN.parquet
    <root>/<dataset>/date=YYYY-MM-DD/_manifest.json   (the commit record: which files make the partition)
Writes go to <root>/<dataset>/_staging/date=YYYY-MM-DD/<write id>/ first; see `write_partition`.
"""

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

import fsspec
import polars as pl

from etl_resources.lake.day_schema import DaySchema, type_name
from etl_resources.prefetch import ReadAhead
from etl_resources.progress import Progress

AZURE_SCHEMES = {"abfs", "abfss", "az"}
MANIFEST = "_manifest.json"
# zstd at level 1 writes about 1.6x faster than polars' default level 3 for a few percent more bytes;
# Synapse, Databricks, DuckDB and Spark all read it.
PARQUET_ZSTD_LEVEL = 1


@dataclass(frozen=True)
class Lake:
    fs: fsspec.AbstractFileSystem
    root: str
    display_root: str
    polars_prefix: str
    polars_options: dict[str, str] | None

    def dataset_dir(self, dataset: str) -> str:
        return f"{self.root}/{dataset}"

    def partition_dir(self, dataset: str, partition_key: str) -> str:
        return f"{self.root}/{dataset}/date={partition_key}"

    def display(self, path: str) -> str:
        return self.display_root + path[len(self.root) :]

    def relative(self, path: str) -> str:
        """The path inside the lake (`raw/orders/date=…/part-….parquet`): stays true if the lake moves."""
        return path[len(self.root) :].lstrip("/")

    def polars_path(self, path: str) -> str:
        return self.polars_prefix + path


@dataclass(frozen=True)
class PartitionWrite:
    partition_key: str
    files: list[str]
    rows: int
    bytes: int
    schema: pl.Schema


def open_lake(url: str, account_key: str | None = None, endpoint: str | None = None) -> Lake:
    """Open a lake root: a local path, or abfss://<container>@<account>.dfs.core.windows.net/<prefix>."""
    parsed = urlparse(url)
    if parsed.scheme not in AZURE_SCHEMES:
        fs = fsspec.filesystem("file", auto_mkdir=True)
        root = fs._strip_protocol(url).rstrip("/")
        return Lake(fs=fs, root=root, display_root=root, polars_prefix="", polars_options=None)
    container, _, account_host = parsed.netloc.partition("@")
    account = account_host.split(".", 1)[0]
    if not container or not account:
        raise ValueError(f"lake url {url!r} must look like abfss://<container>@<account>.dfs.core.windows.net/<prefix>")
    root = f"{container}/{parsed.path.strip('/')}".rstrip("/")
    fs, polars_options = _azure_filesystem(account, account_key, endpoint)
    display_root = f"abfss://{container}@{account_host}/{parsed.path.strip('/')}".rstrip("/")
    return Lake(fs=fs, root=root, display_root=display_root, polars_prefix="az://", polars_options=polars_options)


def _azure_filesystem(account: str, account_key: str | None, endpoint: str | None):
    from adlfs import AzureBlobFileSystem

    polars_options = {"account_name": account}
    if account_key and endpoint:
        connection_string = f"DefaultEndpointsProtocol={urlparse(endpoint).scheme};AccountName={account};AccountKey={account_key};BlobEndpoint={endpoint};"
        fs = AzureBlobFileSystem(connection_string=connection_string)
        polars_options |= {"account_key": account_key, "endpoint": endpoint}
    elif account_key:
        fs = AzureBlobFileSystem(account_name=account, account_key=account_key)
        polars_options |= {"account_key": account_key}
    else:
        # No key: Managed Identity in Azure, `az login` locally.
        from azure.identity.aio import DefaultAzureCredential

        fs = AzureBlobFileSystem(account_name=account, credential=DefaultAzureCredential())
    return fs, polars_options


@dataclass(frozen=True)
class StagedPart:
    path: str
    schema: pl.Schema
    rows: int


def write_partition(
    lake: Lake,
    dataset: str,
    partition_key: str,
    frames: Iterable[pl.DataFrame],
    log: logging.Logger | None = None,
) -> PartitionWrite:
    """Write one partition so that readers see either the old files or the new ones, never a half.

    Parts are written under `_staging/date=<key>/<write id>/`; only when every batch is written are they moved
    into `date=<key>/` and `_manifest.json` rewritten to list them (one blob put: the commit point). Files of the
    previous write, and staging folders that earlier writes of this day left behind, are then deleted. Readers
    go through the manifest, so an interrupted write is invisible.

    Every part of a day has one schema: batches are reconciled as they come (`DaySchema`), and parts written
    before a column was widened are rewritten, one at a time, before the commit.
    """
    fs = lake.fs
    # Microseconds, so two writes of a day in one second still order by time, not by their random suffix.
    write_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
    day_staging = f"{lake.dataset_dir(dataset)}/_staging/date={partition_key}"
    staging = f"{day_staging}/{write_id}"
    label = f"{dataset} {partition_key}"
    day = DaySchema(label)
    parts: list[StagedPart] = []
    progress = Progress(log, label)
    batches = ReadAhead(frames)
    try:
        for batch, frame in enumerate(batches, start=1):
            if frame.height == 0 and parts:
                continue
            # An empty batch says nothing about its columns' types; only its names join the schema.
            day.admit(frame.schema if frame.height else dict.fromkeys(frame.columns, pl.Null), batch)
            if frame.height:
                frame = day.conform(frame, batch)
            path = f"{staging}/part-{len(parts):05d}.parquet"
            _write_parquet(fs, path, frame)
            parts.append(StagedPart(path, frame.schema, frame.height))
            progress.add(frame.height)
        if not parts:
            raise ValueError(f"{label}: the extract yielded no batch at all, not even an empty one")
        schema = _reconcile(fs, day, parts)
        final = [_commit_file(fs, part.path, lake.partition_dir(dataset, partition_key), write_id) for part in parts]
        sizes = [fs.size(path) for path in final]
        rows = sum(part.rows for part in parts)
        manifest = {
            "write_id": write_id,
            "written_at": dt.datetime.now(dt.UTC).isoformat(),
            "rows": rows,
            "files": [path.rsplit("/", 1)[1] for path in final],
            "schema": {name: type_name(dtype) for name, dtype in schema.items()},
        }
        fs.pipe_file(f"{lake.partition_dir(dataset, partition_key)}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
    except BaseException as err:
        _clean_up(lake, staging, log, failure=err)
        raise
    finally:
        # Closing the stream now, not at garbage collection, releases the source's connection and cursor.
        batches.close()
    _clean_up(lake, staging, log)
    _remove_stale(fs, lake.partition_dir(dataset, partition_key), keep=set(manifest["files"]) | {MANIFEST})
    _remove_earlier_staging(lake, day_staging, write_id, log)
    if log:
        log.info(f"{label}: committed {progress.summary()} in {len(final)} file(s)")
    return PartitionWrite(partition_key=partition_key, files=final, rows=rows, bytes=sum(sizes), schema=schema)


def _write_parquet(fs: fsspec.AbstractFileSystem, path: str, frame: pl.DataFrame) -> None:
    with fs.open(path, "wb") as fh:
        frame.write_parquet(fh, compression="zstd", compression_level=PARQUET_ZSTD_LEVEL, statistics=True)


def _reconcile(fs: fsspec.AbstractFileSystem, day: DaySchema, parts: list[StagedPart]) -> pl.Schema:
    """Rewrite the staged parts written before a later batch widened a column; returns the day's schema."""
    if not any(part.rows for part in parts):
        return parts[0].schema
    schema = day.schema
    for batch, part in enumerate(parts, start=1):
        if part.schema == schema:
            continue
        if part.rows:
            with fs.open(part.path, "rb") as fh:
                frame = day.conform(pl.read_parquet(fh), batch)
        else:
            frame = pl.DataFrame(schema=schema)
        _write_parquet(fs, part.path, frame)
    return schema


def _commit_file(fs: fsspec.AbstractFileSystem, staged: str, partition_dir: str, write_id: str) -> str:
    """`_staging/<write id>/part-00003.parquet` → `date=<key>/part-<write id>-00003.parquet`."""
    number = staged.rsplit("/", 1)[1].removeprefix("part-")
    target = f"{partition_dir}/part-{write_id}-{number}"
    fs.mv(staged, target)
    return target


def _remove(fs: fsspec.AbstractFileSystem, path: str) -> None:
    if fs.exists(path):
        fs.rm(path, recursive=True)


def _clean_up(lake: Lake, staging: str, log: logging.Logger | None, failure: BaseException | None = None) -> None:
    """Remove a write's staging folder. If that fails, the write's own error (if any) stays the one raised:
    the cleanup's is logged and added to it as a note, and the next write of the day removes the folder."""
    try:
        _remove(lake.fs, staging)
    except Exception as err:
        note = f"could not remove the staged parts at {lake.display(staging)} ({type(err).__name__}: {err}); the next write of this day removes them"
        if failure is not None:
            failure.add_note(note)
        if log:
            log.warning(note)


def _remove_earlier_staging(lake: Lake, day_staging: str, write_id: str, log: logging.Logger | None) -> None:
    """Staging folders of this day's earlier writes that could not clean up after themselves (a crash, a
    failed delete). Write ids start with their UTC start time, so a write that started later is left alone."""
    try:
        leftovers = [path for path in lake.fs.ls(day_staging, detail=False) if path.rstrip("/").rsplit("/", 1)[1] < write_id]
    except FileNotFoundError:
        return
    for path in leftovers:
        _clean_up(lake, path, log)
    try:
        # rmdir removes only an empty folder, in one step: a list-then-delete would take along the parts of a
        # write of the same day that staged between the two. Object stores have no empty folders to remove.
        lake.fs.rmdir(day_staging)
    except OSError:
        pass  # not empty (another write of the day), or gone already


def _remove_stale(fs: fsspec.AbstractFileSystem, partition_dir: str, keep: set[str]) -> None:
    for path in fs.ls(partition_dir, detail=False):
        if path.rstrip("/").rsplit("/", 1)[1] not in keep:
            fs.rm(path, recursive=True)


def read_manifest(lake: Lake, dataset: str, partition_key: str) -> dict | None:
    path = f"{lake.partition_dir(dataset, partition_key)}/{MANIFEST}"
    if not lake.fs.exists(path):
        return None
    return json.loads(lake.fs.cat_file(path))


def partition_files(lake: Lake, dataset: str, partition_key: str) -> list[str]:
    manifest = read_manifest(lake, dataset, partition_key)
    if manifest is None:
        raise FileNotFoundError(
            f"{dataset} partition {partition_key} has no committed data at {lake.display(lake.partition_dir(dataset, partition_key))}; materialize it first"
        )
    return [f"{lake.partition_dir(dataset, partition_key)}/{name}" for name in manifest["files"]]


def scan_partition(lake: Lake, dataset: str, partition_key: str, file_column: str | None = None) -> pl.LazyFrame:
    """A lazy frame over the committed files of one partition; `file_column` names each row's file, relative to the lake root."""

    def scan(path: str) -> pl.LazyFrame:
        frame = pl.scan_parquet(lake.polars_path(path), storage_options=lake.polars_options)
        return frame if file_column is None else frame.with_columns(pl.lit(lake.relative(path)).alias(file_column))

    return pl.concat([scan(path) for path in partition_files(lake, dataset, partition_key)], how="diagonal_relaxed")
