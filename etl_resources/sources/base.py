"""What a source kind is to the platform: its config model, how it extracts a day, the UI's kind tag, and the
optional hooks of kinds whose days arrive as files or that have an Excel form.

A kind lives in one folder under `etl_resources/sources/` that exposes a `SourceKind`, and is listed once in
`registry.py`; the sources file's model, its JSON Schema, the workbook's columns and the assets read it there.
"""

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from etl_resources.config.model import BaseSource
from etl_resources.lake.io_manager import LakeIOManager
from etl_resources.secrets import SecretResolver


@dataclass(frozen=True)
class ExtractRun:
    """What one day's extract may use: its window [start, end) in UTC and partition key, secrets, the lake, the log."""

    window: tuple[dt.datetime, dt.datetime]
    partition_key: str
    secrets: SecretResolver
    lake: LakeIOManager
    log: Any


class Extractor(Protocol):
    def __call__(self, source: Any, run: ExtractRun) -> Iterator[pl.DataFrame]:
        """The day's rows in frames of at most `source.batch_size` rows; at least one frame, maybe empty."""
        ...


# The files a sensor watches for a kind whose days arrive as files: each has `name`, `day` (None when its
# name says none) and `version`, which changes when the file is dropped again with other content.
Arrivals = Callable[[Any, SecretResolver, LakeIOManager], list]


@dataclass(frozen=True)
class Column:
    name: str
    meaning: str
    allowed: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class WorkbookForm:
    """How a kind's sources are rows of the Excel job list.

    `entry` turns a row into this kind's fields of the raw entry (`kind` included); `row` a source into this
    kind's cells (`source_type` included). `fields` maps each model field the columns can say (dotted for a
    nested one) to the column an error about it points at. The row's secret is `${<source_name>-<secret>}`,
    held in the source where `reference` finds it."""

    source_types: tuple[str, ...]
    columns: tuple[Column, ...]
    fields: Mapping[str, str]
    entry: Callable[[dict[str, str]], dict[str, Any]]
    row: Callable[[Any], dict[str, str]]
    secret: str
    reference: Callable[[Any], str | None]


@dataclass(frozen=True, eq=False)
class SourceKind:
    """One kind of source. `ui_kind` is the kind tag the asset shows; `reads` what `etl-config validate` says it reads.
    `parses` says its extractor parses rows out of messages, so a row may be a reject even without a contract."""

    kind: str
    model: type[BaseSource]
    extract: Extractor
    ui_kind: Callable[[Any], str]
    reads: Callable[[Any], str]
    arrivals: Arrivals | None = None
    workbook: WorkbookForm | None = None
    parses: bool = False
