"""The `rabbitmq` kind: a RabbitMQ stream queue, a day read from the broker's log by its chunk time."""

from collections.abc import Iterator

import polars as pl

from etl_resources.sources.base import ExtractRun, SourceKind
from etl_resources.sources.rabbitmq.extract import extract_rabbitmq
from etl_resources.sources.rabbitmq.model import RabbitMQSource


def extract_day(source: RabbitMQSource, run: ExtractRun) -> Iterator[pl.DataFrame]:
    # A generator, so a broker that cannot be reached fails while the day is read, where the failure is audited.
    yield from extract_rabbitmq(source, run.secrets.store(), run.window, run.log)


KIND = SourceKind(
    kind="rabbitmq",
    model=RabbitMQSource,
    extract=extract_day,
    ui_kind=lambda source: "rabbitmq",
    reads=lambda source: f"stream {source.stream} on {source.address} (vhost {source.vhost})",
    parses=True,
)
