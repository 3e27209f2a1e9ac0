"""The `files` kind: files dropped into a landing folder, a day per file name, watched by a landing sensor."""

from collections.abc import Iterator

import polars as pl

from etl_resources.lake.io_manager import LakeIOManager
from etl_resources.secrets import SecretResolver
from etl_resources.sources.base import ExtractRun, SourceKind
from etl_resources.sources.files.extract import LandingFile, landing_files, read_day
from etl_resources.sources.files.landing import open_landing
from etl_resources.sources.files.model import FileSource


def extract_day(source: FileSource, run: ExtractRun) -> Iterator[pl.DataFrame]:
    # A generator, so a landing that cannot be opened fails while the day is read, where the failure is audited.
    yield from read_day(open_landing(source, run.secrets, run.lake), source, run.partition_key, run.log)


def arrivals(source: FileSource, secrets: SecretResolver, lake_io_manager: LakeIOManager) -> list[LandingFile]:
    return landing_files(open_landing(source, secrets, lake_io_manager), source)


KIND = SourceKind(
    kind="files",
    model=FileSource,
    extract=extract_day,
    ui_kind=lambda source: source.format or "files",
    reads=lambda source: f"{source.landing} {source.pattern}",
    arrivals=arrivals,
)
