"""The `kafka` kind: a topic of a Kafka cluster or of Azure Event Hubs, a day of its retained log per partition."""

from collections.abc import Iterator

import polars as pl

from etl_resources.sources.base import ExtractRun, SourceKind
from etl_resources.sources.kafka.extract import kafka_logs
from etl_resources.sources.kafka.model import KafkaSource
from etl_resources.sources.streams import day_frames


def extract_day(source: KafkaSource, run: ExtractRun) -> Iterator[pl.DataFrame]:
    # A generator, so a broker that cannot be reached fails while the day is read, where the failure is audited.
    yield from day_frames(source, kafka_logs(source, run.secrets.store(), run.window[0], run.log), run.window, run.log)


KIND = SourceKind(
    kind="kafka",
    model=KafkaSource,
    extract=extract_day,
    ui_kind=lambda source: "kafka",
    reads=lambda source: f"topic {source.topic} on {source.bootstrap_servers}",
    parses=True,
)
