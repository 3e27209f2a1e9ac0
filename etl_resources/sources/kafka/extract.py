"""Read a day of a Kafka topic with confluent-kafka: each partition from the day's start, by the broker's time index,
to the high watermark it had when the day's read began.

A message's timestamp is the producer's (CreateTime, which may go backwards along the log) unless the topic sets
LogAppendTime; only the latter is handed over as `logged`, so a CreateTime topic is read to its end and a message
produced late with an old timestamp is found in its day. Offsets are never committed: the day is found by time."""

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import confluent_kafka as ck

from etl_resources.secrets import SecretStore, redact
from etl_resources.sources.kafka.model import EVENT_HUBS_USERNAME, KafkaSource
from etl_resources.sources.streams import Message, StreamError


class KafkaSourceError(StreamError):
    """A stream error; `transient` when trying again may work (a broker that is down), so the step's retries apply."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(redact(message))
        self.transient = transient


AUTH_CODES = {ck.KafkaError._AUTHENTICATION, ck.KafkaError.SASL_AUTHENTICATION_FAILED, ck.KafkaError._SSL}
# The longest single wait of a poll, so the idle bound is checked often.
POLL_SECONDS = 0.5
# librdkafka's own log lines (every reconnect attempt) go here, not to stderr; they propagate to the run's handlers.
_QUIET = logging.getLogger("etl.kafka.client")
_QUIET.addHandler(logging.NullHandler())


def _consumer(config: dict[str, Any]) -> Any:
    """The seam the tests replace with a fake: no Kafka broker can run where they do."""
    return ck.Consumer(config)


def client_config(source: KafkaSource, secrets: SecretStore, errors: Callable[[Any], None]) -> dict[str, Any]:
    """librdkafka's settings for a consumer that never commits and never creates the topic."""
    config: dict[str, Any] = {
        "bootstrap.servers": secrets.substitute(source.bootstrap_servers),
        "group.id": source.consumer_group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "allow.auto.create.topics": False,
        # librdkafka refuses less than a second here.
        "socket.connection.setup.timeout.ms": max(1000, int(source.timeout_seconds * 1000)),
        "error_cb": errors,
        "logger": _QUIET,
    }
    if source.event_hubs is not None:
        username, password = EVENT_HUBS_USERNAME, secrets.substitute(source.event_hubs.connection_string)
        config |= {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": username, "sasl.password": password}
    else:
        config["security.protocol"] = source.security_protocol
        if source.sasl_mechanism:
            config |= {
                "sasl.mechanism": source.sasl_mechanism,
                "sasl.username": secrets.substitute(source.sasl_username),
                "sasl.password": secrets.substitute(source.sasl_password),
            }
    if source.ssl_ca_location:
        config["ssl.ca.location"] = secrets.substitute(source.ssl_ca_location)
    return config


@dataclass
class Broker:
    """The source's consumer config and the errors librdkafka reported in the background (served on poll)."""

    source: KafkaSource
    config: dict[str, Any]
    errors: list[Any]

    @property
    def where(self) -> str:
        return self.config["bootstrap.servers"]

    def fail(self, field: str, problem: str, fix: str, transient: bool = False) -> KafkaSourceError:
        return KafkaSourceError(f"source '{self.source.name}', field '{field}': {problem} (fix: {fix})", transient)

    def refused(self, consumer: Any, err: ck.KafkaException, doing: str) -> KafkaSourceError:
        """Why a call failed: bad credentials when librdkafka said so in the background, else the broker is unreachable."""
        consumer.poll(0)
        auth = next((error for error in self.errors if error.code() in AUTH_CODES), None)
        if auth is not None:
            fields = "event_hubs.connection_string" if self.source.event_hubs else "sasl_username', 'sasl_password"
            return self.fail(
                fields,
                f"broker {self.where} refused the credentials while {doing}: {auth.str()}",
                "check the user name and the secret's value, the SASL mechanism and ssl_ca_location",
            )
        return self.fail(
            "bootstrap_servers",
            f"no answer from broker {self.where} within timeout_seconds={self.source.timeout_seconds:g} while {doing}: {err.args[0].str()}",
            "check the host and port, that the broker is up and reachable from here, and security_protocol",
            transient=True,
        )


def partitions_of(broker: Broker, consumer: Any) -> list[int]:
    source = broker.source
    try:
        metadata = consumer.list_topics(source.topic, timeout=source.timeout_seconds)
    except ck.KafkaException as err:
        raise broker.refused(consumer, err, "reading the topic's metadata") from None
    topic = metadata.topics.get(source.topic)
    error = None if topic is None else topic.error
    if topic is None or (error is not None and error.code() in (ck.KafkaError.UNKNOWN_TOPIC_OR_PART, ck.KafkaError._UNKNOWN_TOPIC)):
        raise broker.fail("topic", f"topic {source.topic!r} does not exist on broker {broker.where}", "correct `topic`, or create the topic")
    if error is not None and error.code() == ck.KafkaError.TOPIC_AUTHORIZATION_FAILED:
        raise broker.fail("topic", f"the consumer may not read topic {source.topic!r} on broker {broker.where}", "grant the user Read and Describe on it")
    if error is not None:
        raise broker.fail("topic", f"topic {source.topic!r} on broker {broker.where}: {error.str()}", "check the topic on the broker")
    known = sorted(topic.partitions)
    unknown = sorted(set(source.partitions or []) - set(known))
    if unknown:
        problem = f"topic {source.topic!r} has no partition {unknown[0]}; it has {known}"
        raise broker.fail("partitions", problem, "list partitions the topic has, or remove `partitions`")
    return sorted(source.partitions) if source.partitions else known


@dataclass(frozen=True)
class Span:
    """Where a partition's day begins, and where its log ended when the day's read began."""

    partition: int
    first: int
    low: int
    high: int


def spans(broker: Broker, consumer: Any, partitions: list[int], start: dt.datetime) -> list[Span]:
    source = broker.source
    millis = int(start.timestamp() * 1000)
    try:
        found = consumer.offsets_for_times([ck.TopicPartition(source.topic, p, millis) for p in partitions], timeout=source.timeout_seconds)
        # Taken now, so a day's read has an end even while producers keep writing.
        marks = {p: consumer.get_watermark_offsets(ck.TopicPartition(source.topic, p), timeout=source.timeout_seconds) for p in partitions}
    except ck.KafkaException as err:
        raise broker.refused(consumer, err, "looking up the day's offsets") from None
    result = []
    for position in found:
        if position.error is not None:
            raise broker.fail("topic", f"partition {position.partition}: offsets by time failed: {position.error.str()}", "check the topic on the broker")
        # OFFSET_END: no message at or after the day's start yet.
        low, high = marks[position.partition]
        if 0 <= position.offset < high:
            result.append(Span(position.partition, position.offset, low, high))
    return result


def _time(kind: int, millis: int) -> dt.datetime | None:
    if kind == ck.TIMESTAMP_NOT_AVAILABLE:
        return None
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=millis)


def as_message(record: Any) -> Message:
    """A consumed record as the day reader's Message; a tombstone (no value) has an empty body."""
    kind, millis = record.timestamp()
    when = _time(kind, millis)
    # Kafka allows a header name more than once; the last wins, as Java's `Headers.lastHeader`. No value reads as empty.
    headers = {name: b"" if value is None else value for name, value in record.headers() or []}
    return Message(
        stream=record.topic(),
        partition=record.partition(),
        offset=record.offset(),
        timestamp=when,
        body=record.value() or b"",
        key=record.key(),
        headers=headers,
        logged=when if kind == ck.TIMESTAMP_LOG_APPEND_TIME else None,
    )


def read_partition(broker: Broker, span: Span, log: Any = None) -> Iterator[Message]:
    """The partition's messages from the day's first offset to the high watermark, or until `idle_seconds` pass without one."""
    source = broker.source
    consumer = _consumer(broker.config)
    reported = len(broker.errors)
    last = span.first - 1
    try:
        consumer.assign([ck.TopicPartition(source.topic, span.partition, span.first)])
        idle_until = time.monotonic() + source.idle_seconds
        while time.monotonic() < idle_until:
            record = consumer.poll(min(POLL_SECONDS, source.idle_seconds))
            if record is None:
                continue
            last = record.offset()
            if record.error() is not None:
                raise broker.fail("topic", f"partition {span.partition} of {source.topic!r}: {record.error().str()}", "check the topic and the broker")
            if record.timestamp()[0] == ck.TIMESTAMP_NOT_AVAILABLE and not (source.timestamp_header or source.timestamp_field):
                # Without a time the message would belong to no day, or to every one.
                raise broker.fail(
                    "timestamp_header",
                    f"partition {span.partition} offset {record.offset()} of {source.topic!r} has no timestamp (a message format older than Kafka 0.10)",
                    "set `timestamp_header` or `timestamp_field` to where the producer puts the event time",
                )
            yield as_message(record)
            if record.offset() >= span.high - 1:
                return
            idle_until = time.monotonic() + source.idle_seconds
        # Short of the watermark is the end of the log (a transaction marker holds the last offset), unless the broker went away.
        if len(broker.errors) > reported:
            raise broker.fail(
                "bootstrap_servers",
                f"lost broker {broker.where} at offset {last} of partition {span.partition}, short of {span.high - 1}: {broker.errors[-1].str()}",
                "check the broker; the day is read again from its start",
                transient=True,
            )
        if log is not None:
            log.warning(
                f"source '{source.name}': partition {span.partition} of {source.topic!r} ended at offset {last}, short of the watermark "
                f"{span.high - 1}, after {source.idle_seconds:g}s without a message: taken as transaction markers or aborted messages "
                f"(fix: raise `idle_seconds` if the broker is slow to answer)"
            )
    finally:
        consumer.close()


def kafka_logs(source: KafkaSource, secrets: SecretStore, start: dt.datetime, log: Any) -> list[Iterator[Message]]:
    """One lazy iterator per partition with messages of the day; each opens its own consumer when it is first read."""
    errors: list[Any] = []
    broker = Broker(source, client_config(source, secrets, errors.append), errors)
    consumer = _consumer(broker.config)
    try:
        found = spans(broker, consumer, partitions_of(broker, consumer), start)
    finally:
        consumer.close()
    if log is not None:
        log.info(f"source '{source.name}': topic {source.topic!r}, {len(found)} partition(s) with messages from {start.isoformat()}")
        for span in found:
            if span.first == span.low > 0:
                # The day begins at the oldest retained message: earlier ones of the day may have been deleted.
                log.warning(
                    f"source '{source.name}': partition {span.partition} of {source.topic!r} starts at offset {span.low}, after retention "
                    f"deleted older messages; the day {start.date()} may have lost its first messages (fix: raise the topic's retention.ms)"
                )
    return [read_partition(broker, span, log) for span in found]
