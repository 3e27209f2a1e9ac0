"""The `files` kind: files dropped into a landing folder, a day per file name, watched by a landing sensor."""

from collections.abc import Iterator

import polars as pl

from etl_resources.lake.io_manager import LakeIOManager
from etl_resources.sources.base import ExtractRun, SourceKind
from etl_resources.sources.files.extract import LandingFile, landing_files, read_day
from etl_resources.sources.files.model import FileSource


def extract_day(source: FileSource, run: ExtractRun) -> Iterator[pl.DataFrame]:
    return read_day(run.lake.landing(source.landing), source, run.partition_key, run.log)


def arrivals(source: FileSource, lake_io_manager: LakeIOManager) -> list[LandingFile]:
    return landing_files(lake_io_manager.landing(source.landing), source)


KIND = SourceKind(
    kind="files",
    model=FileSource,
    extract=extract_day,
    ui_kind=lambda source: source.format or "files",
    reads=lambda source: f"{source.landing} {source.pattern}",
    arrivals=arrivals,
)
