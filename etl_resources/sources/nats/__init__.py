"""The `nats` kind: a NATS JetStream stream, a day read from the messages the server logged from its start on."""

from collections.abc import Iterator

import polars as pl

from etl_resources.sources.base import ExtractRun, SourceKind
from etl_resources.sources.nats.extract import stream_messages
from etl_resources.sources.nats.model import NatsSource
from etl_resources.sources.streams import day_frames


def extract_day(source: NatsSource, run: ExtractRun) -> Iterator[pl.DataFrame]:
    messages = stream_messages(source, run.secrets.store(), run.window[0])
    return day_frames(source, [messages], run.window, run.log)


def reads(source: NatsSource) -> str:
    return f"{', '.join(source.servers)} stream {source.stream}" + (f" subject {source.subject}" if source.subject else "")


KIND = SourceKind(kind="nats", model=NatsSource, extract=extract_day, ui_kind=lambda source: "nats", reads=reads, parses=True)
