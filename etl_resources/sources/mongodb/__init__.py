"""The `mongodb` kind: a collection read in cursor batches, whole or by a date field per day."""

from collections.abc import Iterator

import polars as pl

from etl_resources.sources.base import ExtractRun, SourceKind
from etl_resources.sources.mongodb.extract import extract_mongodb
from etl_resources.sources.mongodb.model import MongoSource, split_url


def extract_day(source: MongoSource, run: ExtractRun) -> Iterator[pl.DataFrame]:
    return extract_mongodb(source, run.secrets.store(), run.window, run.log)


KIND = SourceKind(
    kind="mongodb",
    model=MongoSource,
    extract=extract_day,
    ui_kind=lambda source: "mongodb",
    reads=lambda source: f"{split_url(source.url)[0]} {source.database}.{source.collection}",
)
