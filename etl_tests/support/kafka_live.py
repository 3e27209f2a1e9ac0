"""A day of a real Kafka broker (ETL_TEST_KAFKA_BOOTSTRAP) through the real confluent_kafka clients: a topic of its
own is created, filled with messages of known timestamps around one day, read by the kind's extractor, deleted."""

import datetime as dt
import json
import time
from pathlib import Path

import confluent_kafka as ck
import polars as pl
from confluent_kafka.admin import AdminClient, NewTopic

from etl_resources.secrets import SecretStore
from etl_resources.sources.kafka.extract import kafka_logs
from etl_resources.sources.kafka.model import KafkaSource
from etl_resources.sources.streams import day_frames

TIMEOUT = 30


def _wait_for_topic(admin: AdminClient, topic: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while topic not in admin.list_topics(timeout=TIMEOUT).topics or admin.list_topics(topic, timeout=TIMEOUT).topics[topic].error is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} did not appear within {TIMEOUT}s")
        time.sleep(0.2)


def live_day(bootstrap: str, topic: str, day: str) -> tuple[list[tuple], list[tuple]]:
    """(what was produced inside the day, what the extractor read), both as sorted (partition, order_id, customer)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(TIMEOUT)
    try:
        _wait_for_topic(admin, topic)
        start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
        producer = ck.Producer({"bootstrap.servers": bootstrap})
        written = []
        for n, offset in enumerate([-1, 0, 3600, 86_399.999, 86_400, 7200]):  # before, in (last one late), after
            when = start + dt.timedelta(seconds=offset)
            body = {"order_id": n, "customer": f"Zoë 東京 😀 %s '\"\\ {n}", "big": 2**53 + 1}
            producer.produce(topic, json.dumps(body).encode(), key=str(n).encode(), partition=n % 2, timestamp=int(when.timestamp() * 1000))
            if start <= when < start + dt.timedelta(days=1):
                written.append((n % 2, n, body["customer"]))
        if producer.flush(TIMEOUT):
            raise TimeoutError("messages not delivered")
        source = KafkaSource.model_validate(
            {
                "name": "live_kafka",
                "kind": "kafka",
                "bootstrap_servers": bootstrap,
                "topic": topic,
                "idle_seconds": 5,
                "start_date": day,
                "target": {"table": "live_kafka"},
            }
        )
        window = (start, start + dt.timedelta(days=1))
        frame = pl.concat(list(day_frames(source, kafka_logs(source, SecretStore(Path("/nonexistent")), start, None), window)), how="diagonal_relaxed")
        assert frame["big"].to_list() == [2**53 + 1] * frame.height
        return sorted(written), sorted(frame.select("_stream_partition", "order_id", "customer").rows())
    finally:
        admin.delete_topics([topic])[topic].result(TIMEOUT)
