"""An in-memory Kafka cluster behind the part of confluent_kafka's Consumer API the `kafka` kind uses.

No Kafka broker can be installed where the tests run, so the extractor's `_consumer(config)` seam is pointed at
`FakeKafka.consumer`. The fake keeps the real client's semantics and types: `list_topics` gives
`confluent_kafka.admin.ClusterMetadata` (an unknown topic carries UNKNOWN_TOPIC_OR_PART, no partitions);
`offsets_for_times` answers each `TopicPartition` with the earliest offset whose timestamp is >= the one asked,
or OFFSET_END (-1) when there is none; `get_watermark_offsets` is (low, high); `poll` returns real
`confluent_kafka.Message` objects of the assigned partitions in offset order, or None after waiting its timeout;
background errors (a refused login, a broker that is down) go to `error_cb`, served by `poll`, while the call
itself raises `KafkaException`, as librdkafka does; a closed consumer raises RuntimeError (closing it again does not).
"""

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import confluent_kafka as ck
from confluent_kafka.admin import ClusterMetadata, PartitionMetadata, TopicMetadata

BOOTSTRAP = "kafka-fake.invalid:9092"


@dataclass
class FakeTopic:
    name: str
    # None where a transaction's commit marker holds an offset: counted by the watermark, never delivered.
    partitions: list[list[ck.Message | None]]
    # LogAppendTime: the broker stamps each message with its clock, whatever the producer said.
    log_append_time: bool = False
    # Per partition, the first offset retention kept (the low watermark).
    low: dict[int, int] = field(default_factory=dict)


def millis(when: dt.datetime | int) -> int:
    return when if isinstance(when, int) else int(when.timestamp() * 1000)


@dataclass
class FakeKafka:
    bootstrap: str = BOOTSTRAP
    # {"mechanism": "PLAIN", "username": ..., "password": ...} for a SASL listener; None for PLAINTEXT.
    sasl: dict[str, str] | None = None
    topics: dict[str, FakeTopic] = field(default_factory=dict)
    # The broker's clock for LogAppendTime topics; None: the wall clock.
    clock: dt.datetime | None = None
    consumers: list["FakeConsumer"] = field(default_factory=list)
    # The broker goes down once this many messages were delivered (None: never).
    down_after: int | None = None
    delivered: int = 0

    def create_topic(self, name: str, partitions: int = 1, timestamp_type: str = "CreateTime") -> FakeTopic:
        self.topics[name] = FakeTopic(name, [[] for _ in range(partitions)], log_append_time=timestamp_type == "LogAppendTime")
        return self.topics[name]

    def produce(
        self,
        topic: str,
        value: bytes | str | None = None,
        key: bytes | str | None = None,
        partition: int = 0,
        timestamp: dt.datetime | int = 0,
        headers: list[tuple[str, bytes | None]] | None = None,
    ) -> int:
        """Append as `Producer.produce` would (timestamp in ms or a datetime; 0: now); returns the offset."""
        log = self.topics[topic]
        if log.log_append_time:
            kind, stamp = ck.TIMESTAMP_LOG_APPEND_TIME, millis(self.clock or dt.datetime.now(dt.UTC))
        else:
            kind, stamp = ck.TIMESTAMP_CREATE_TIME, millis(timestamp) or millis(dt.datetime.now(dt.UTC))
        encode = lambda text: text.encode() if isinstance(text, str) else text  # noqa: E731 - the client encodes str as UTF-8
        messages = log.partitions[partition]
        message = ck.Message(
            topic=topic, partition=partition, offset=len(messages), key=encode(key), value=encode(value), headers=headers, timestamp=(kind, stamp)
        )
        messages.append(message)
        return message.offset()

    def commit_marker(self, topic: str, partition: int = 0) -> None:
        """A transactional producer's commit: a control record takes the next offset; consumers never see it."""
        self.topics[topic].partitions[partition].append(None)

    def delete_records(self, topic: str, partition: int, before: int) -> None:
        """What retention (or `AdminClient.delete_records`) does: offsets below `before` are gone, the others keep theirs."""
        self.topics[topic].low[partition] = before

    def consumer(self, config: dict[str, Any]) -> "FakeConsumer":
        consumer = FakeConsumer(self, config)
        self.consumers.append(consumer)
        return consumer

    @property
    def open_consumers(self) -> int:
        return sum(not consumer.closed for consumer in self.consumers)


class FakeConsumer:
    def __init__(self, cluster: FakeKafka, config: dict[str, Any]):
        self.cluster = cluster
        self.config = dict(config)
        self.closed = False
        self.pending_errors: list[ck.KafkaError] = []
        self.assignment: list[ck.TopicPartition] = []
        self.position: dict[int, int] = {}

    def _connect(self, doing: str) -> None:
        if self.closed:
            raise RuntimeError("Consumer closed")
        servers = self.config.get("bootstrap.servers", "")
        if self.cluster.bootstrap not in servers.split(","):
            self.pending_errors += [
                ck.KafkaError(ck.KafkaError._TRANSPORT, f"{servers}/bootstrap: Connect to {servers} failed: Connection refused"),
                ck.KafkaError(ck.KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"),
            ]
            raise ck.KafkaException(ck.KafkaError(ck.KafkaError._TRANSPORT, f"Failed to {doing}: Local: Broker transport failure"))
        sasl = self.cluster.sasl
        if sasl is None:
            return
        given = {name: self.config.get(f"sasl.{name}") for name in ("mechanism", "username", "password")}
        if not str(self.config.get("security.protocol", "PLAINTEXT")).startswith("SASL_") or given != sasl:
            reason = f"SASL authentication error: Authentication failed due to invalid credentials with SASL mechanism {sasl['mechanism']}"
            self.pending_errors.append(ck.KafkaError(ck.KafkaError._AUTHENTICATION, reason))
            raise ck.KafkaException(ck.KafkaError(ck.KafkaError._TRANSPORT, f"Failed to {doing}: Local: Broker transport failure"))

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        self._connect("get metadata")
        metadata = ClusterMetadata()
        for name in [topic] if topic else list(self.cluster.topics):
            entry = TopicMetadata()
            entry.topic = name
            log = self.cluster.topics.get(name)
            if log is None:
                entry.error = ck.KafkaError(ck.KafkaError.UNKNOWN_TOPIC_OR_PART)
            else:
                for number in range(len(log.partitions)):
                    partition = PartitionMetadata()
                    partition.id = number
                    entry.partitions[number] = partition
            metadata.topics[name] = entry
        return metadata

    def _topic(self, partition: ck.TopicPartition) -> FakeTopic:
        log = self.cluster.topics.get(partition.topic)
        if log is None or partition.partition >= len(log.partitions):
            raise ck.KafkaException(ck.KafkaError(ck.KafkaError._UNKNOWN_PARTITION))
        return log

    def _low(self, partition: ck.TopicPartition) -> int:
        return self._topic(partition).low.get(partition.partition, 0)

    def _log(self, partition: ck.TopicPartition) -> list[ck.Message | None]:
        """The retained messages of a partition (from the low watermark on)."""
        return self._topic(partition).partitions[partition.partition][self._low(partition) :]

    def offsets_for_times(self, partitions: list[ck.TopicPartition], timeout: float = -1) -> list[ck.TopicPartition]:
        self._connect("get offsets by times")
        answered = []
        for asked in partitions:
            found = next((m.offset() for m in self._log(asked) if m is not None and m.timestamp()[1] >= asked.offset), ck.OFFSET_END)
            answered.append(ck.TopicPartition(asked.topic, asked.partition, found))
        return answered

    def get_watermark_offsets(self, partition: ck.TopicPartition, timeout: float = -1, cached: bool = False) -> tuple[int, int]:
        self._connect("get watermark offsets")
        return self._low(partition), self._low(partition) + len(self._log(partition))

    def assign(self, partitions: list[ck.TopicPartition]) -> None:
        if self.closed:
            raise RuntimeError("Consumer closed")
        self.assignment = list(partitions)
        self.position = {partition.partition: partition.offset for partition in partitions}

    def poll(self, timeout: float = -1) -> ck.Message | None:
        if self.closed:
            raise RuntimeError("Consumer closed")
        callback = self.config.get("error_cb")
        while self.pending_errors:
            error = self.pending_errors.pop(0)
            if callback:
                callback(error)
        if self.cluster.down_after is not None and self.cluster.delivered >= self.cluster.down_after:
            if callback:
                callback(ck.KafkaError(ck.KafkaError._TRANSPORT, f"{self.cluster.bootstrap}/1: Disconnected (after 1ms in state UP)"))
            time.sleep(max(timeout, 0))
            return None
        for partition in self.assignment:
            log, low = self._log(partition), self._low(partition)
            at = max(self.position[partition.partition], low)
            while at - low < len(log):
                at += 1
                self.position[partition.partition] = at
                if log[at - 1 - low] is not None:
                    self.cluster.delivered += 1
                    return log[at - 1 - low]
        time.sleep(max(timeout, 0))
        return None

    def close(self) -> None:
        self.closed = True
