"""The `rabbitmq` kind against a real broker (Debian's rabbitmq-server with the stream plugin, started by the tests):
messages published into a stream queue over AMQP 0-9-1 (pika) and AMQP 1.0 (rstream), read back by day.

The broker logs every message when the test publishes it, so the days are the last three before today and each
message's event time is in a header; the sources set `late_seconds` past the time of publishing (see the yaml).
"""

import asyncio
import datetime as dt
import json
import logging
import time
import uuid
from pathlib import Path

import pika
import polars as pl
import pytest
from rstream import AMQPMessage, Producer
from rstream._pyamqp.message import Properties

from etl_resources.lake.store import scan_partition
from etl_resources.secrets import SecretStore
from etl_resources.sources.rabbitmq.extract import extract_rabbitmq, stream_messages
from etl_resources.sources.rabbitmq.model import RabbitMQSource
from etl_resources.sources.streams import StreamError
from etl_tests.support.rabbitmq_server import PASSWORD, USER, RabbitMQ
from etl_tests.support.servers import free_port

TODAY = dt.datetime.now(dt.UTC).date()
DAYS = [TODAY - dt.timedelta(days=back) for back in (3, 2, 1)]
BIG = 2**53 + 1
NOTE = "100% 'single' \"double\" back\\slash \\n Zoë 東京 😀"
LOG = logging.getLogger("test")
# Logged now, days after the days the messages belong to: a day's read must not stop before the end of the log.
LATE = 10 * 86400


@pytest.fixture(autouse=True)
def rabbit_secret(monkeypatch):
    monkeypatch.setenv("RABBIT_SECRET", PASSWORD)


def at(day: dt.date, clock: str) -> str:
    return f"{day.isoformat()}T{clock}Z"


def new_stream(server: RabbitMQ, kind: str = "stream") -> str:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    with _channel(server) as channel:
        channel.queue_declare(name, durable=True, arguments={"x-queue-type": kind} if kind != "classic" else None)
    return name


class _channel:
    def __init__(self, server: RabbitMQ):
        credentials = pika.PlainCredentials(USER, PASSWORD)
        self.connection = pika.BlockingConnection(pika.ConnectionParameters(server.host, server.amqp_port, "/", credentials))

    def __enter__(self):
        channel = self.connection.channel()
        channel.confirm_delivery()  # each publish returns once the broker has logged the message
        return channel

    def __exit__(self, *_):
        self.connection.close()


def publish(server: RabbitMQ, stream: str, messages: list[tuple[str, bytes]], message_id: str | None = None) -> None:
    """(event time, body) pairs into the stream, the event time in the `event_at` header, a trace header beside it."""
    with _channel(server) as channel:
        for event_at, body in messages:
            headers = {"event_at": event_at, "Trace-Id": "t%'\"\\ 😀"}
            channel.basic_publish("", stream, body, pika.BasicProperties(headers=headers, message_id=message_id))


def source(server: RabbitMQ, stream: str, **fields) -> RabbitMQSource:
    config = {
        "name": "orders_stream",
        "kind": "rabbitmq",
        "host": server.host,
        "port": server.port,
        "amqp_port": server.amqp_port,
        "stream": stream,
        "username": USER,
        "password": "${RABBIT_SECRET}",
        "timestamp_header": "event_at",
        "late_seconds": LATE,
        "idle_seconds": 1,
        "start_date": DAYS[0].isoformat(),
        "target": {"table": "orders_stream"},
    }
    return RabbitMQSource.model_validate(config | fields)


def window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return start, start + dt.timedelta(days=1)


def read_day(src: RabbitMQSource, day: dt.date) -> pl.DataFrame:
    return pl.concat(list(extract_rabbitmq(src, SecretStore(Path("no-secrets.toml")), window(day), LOG)), how="diagonal_relaxed")


def orders_yaml(server: RabbitMQ, stream: str) -> str:
    return f"""
sources:
  - name: orders_stream
    kind: rabbitmq
    host: {server.host}
    port: {server.port}
    amqp_port: {server.amqp_port}
    stream: {stream}
    username: {USER}
    password: "${{RABBIT_SECRET}}"
    timestamp_header: event_at
    # The broker logs each message when the test publishes it, days after the day it belongs to; a day is read up
    # to the first message logged after its end plus late_seconds, which must lie after that moment.
    late_seconds: {LATE}
    idle_seconds: 1
    start_date: {DAYS[0].isoformat()}
    target: {{table: orders_stream}}
    contract:
      extra_columns: keep
      columns:
        id: {{type: int, required: true}}
        name: {{type: string}}
        amount: {{type: "decimal(12,2)"}}
        big: {{type: int}}
        at: {{type: timestamp, required: true}}
        note: {{type: string, trim: false}}
    checks: {{reject_rate_max: 0.2, min_rows: 0}}
"""


def hostile_days(server: RabbitMQ, stream: str) -> None:
    first, second, _ = DAYS
    rows = [
        {"id": 1, "name": "Zoë 東京 😀", "amount": "12.34", "big": BIG, "at": at(first, "01:02:03.123456"), "note": NOTE},
        {"id": 2, "name": None, "amount": None, "big": None, "at": at(first, "23:59:59.999999"), "note": None, "MixedCase": "Ab"},
        {"id": 3, "name": "'; DROP TABLE x; --", "amount": "-0.01", "big": -BIG, "at": at(second, "00:00:00"), "note": "%s %(x)s"},
        {"id": 4, "name": "b", "amount": "1", "big": 0, "at": at(second, "12:00:00"), "note": ""},
        {"id": 5, "name": "c", "amount": "2", "big": 1, "at": at(second, "13:00:00"), "note": "\t"},
    ]
    messages = [(row["at"], json.dumps(row, ensure_ascii=False).encode()) for row in rows]
    messages.insert(3, (at(second, "06:00:00"), b'{"id": 6, "at": '))  # cut off: not JSON
    publish(server, stream, messages, message_id="k'%1")


def lake_rows(platform, defs, day: dt.date) -> pl.DataFrame:
    return scan_partition(platform.lake(defs), "raw/orders_stream", day.isoformat()).collect().sort("_offset")


def step_failure(result) -> str:
    return next(str(event.step_failure_data.error) for event in result.all_events if event.event_type_value == "STEP_FAILURE")


def rate_verdicts(result) -> dict[str, bool]:
    return {e.partition: e.passed for e in result.get_asset_check_evaluations() if e.check_name == "reject_rate"}


def test_days_of_a_stream_reach_the_lake_and_the_warehouse_and_a_bad_day_is_held_back(platform, rabbitmq):
    stream = new_stream(rabbitmq)
    hostile_days(rabbitmq, stream)
    defs = platform.configure(orders_yaml(rabbitmq, stream))

    result = platform.materialize(defs, DAYS[0].isoformat(), DAYS[-1].isoformat(), raise_on_error=False)

    assert rate_verdicts(result) == {DAYS[0].isoformat(): True, DAYS[1].isoformat(): False, DAYS[2].isoformat(): True}
    assert f"check 'reject_rate' failed for {DAYS[1].isoformat()}" in step_failure(result)
    first = lake_rows(platform, defs, DAYS[0])
    assert first.select("id", "name", "big", "note", "MixedCase").rows() == [(1, "Zoë 東京 😀", BIG, NOTE, None), (2, None, None, None, "Ab")]
    clocks = [dt.time(1, 2, 3, 123456), dt.time(23, 59, 59, 999999)]
    assert first["at"].to_list() == [dt.datetime.combine(DAYS[0], clock, dt.UTC) for clock in clocks]
    assert [str(value) for value in first["amount"].to_list()] == ["12.34", "None"]
    assert first["_key"].to_list() == ["k'%1", "k'%1"] and first["_stream"].to_list() == [stream, stream]
    assert json.loads(first["_headers"][0]) == {"event_at": at(DAYS[0], "01:02:03.123456"), "Trace-Id": "t%'\"\\ 😀"}
    assert lake_rows(platform, defs, DAYS[1])["id"].to_list() == [3, 4, 5]
    assert lake_rows(platform, defs, DAYS[2]).height == 0
    rejects = scan_partition(platform.lake(defs), "rejects/orders_stream", DAYS[1].isoformat()).collect()
    assert rejects.height == 1 and "the body is not JSON" in str(rejects["errors"].to_list())
    warehouse = platform.query(defs, "SELECT id, name, big, note, _partition FROM orders_stream ORDER BY id")
    assert [row[:4] for row in warehouse] == [(1, "Zoë 東京 😀", BIG, NOTE), (2, None, None, None)]
    assert {str(row[4]) for row in warehouse} == {DAYS[0].isoformat()}


def test_a_day_read_again_is_the_same_and_a_late_message_joins_its_day(platform, rabbitmq):
    stream = new_stream(rabbitmq)
    hostile_days(rabbitmq, stream)
    defs = platform.configure(orders_yaml(rabbitmq, stream))
    day = DAYS[0].isoformat()

    assert platform.materialize(defs, day).success
    once = lake_rows(platform, defs, DAYS[0])
    assert platform.materialize(defs, day).success
    assert lake_rows(platform, defs, DAYS[0]).equals(once) and once.height == 2

    late = {"id": 9, "name": "late", "amount": "9.99", "big": 9, "at": at(DAYS[0], "12:00:00"), "note": "published days later"}
    publish(rabbitmq, stream, [(late["at"], json.dumps(late).encode())])
    assert platform.materialize(defs, day).success
    assert lake_rows(platform, defs, DAYS[0])["id"].to_list() == [1, 2, 9]
    assert sorted(row[0] for row in platform.query(defs, "SELECT id FROM orders_stream")) == [1, 2, 9]


def test_amqp_1_0_properties_give_the_key_and_the_default_timestamp(rabbitmq):
    stream = new_stream(rabbitmq)
    created = dt.datetime.combine(DAYS[1], dt.time(8, 30, 0, 125000), dt.UTC)

    async def send() -> None:
        async with Producer(rabbitmq.host, rabbitmq.port, username=USER, password=PASSWORD) as producer:
            properties = Properties(subject="order-7", creation_time=int(created.timestamp() * 1000))
            await producer.send(stream, AMQPMessage(body=b'{"id": 7}', properties=properties, application_properties={"n": 5, "b": b"x"}))
            await producer.send(stream, AMQPMessage(body=b"not json at all", properties=Properties(creation_time=int(created.timestamp() * 1000))))

    asyncio.run(send())
    frame = read_day(source(rabbitmq, stream, timestamp_header=None), DAYS[1])

    assert frame.select("_key", "_timestamp", "_offset", "id").rows() == [("order-7", created, 0, 7), (None, created, 1, None)]
    assert frame["_stream_partition"].is_null().all()  # a RabbitMQ stream has no partitions
    assert json.loads(frame["_headers"][0]) == {"n": "5", "b": "x"}
    assert frame["__parse_error"][0] is None and "the body is not JSON" in frame["__parse_error"][1]


def test_the_read_stops_at_the_first_message_logged_past_the_day_end_and_late_seconds(rabbitmq):
    """Two messages of yesterday logged about a second apart; with the stop between their log times the second is
    left out and the read ends there, without waiting `idle_seconds` for more."""
    stream = new_stream(rabbitmq)
    yesterday = TODAY - dt.timedelta(days=1)
    publish(rabbitmq, stream, [(at(yesterday, "10:00:00"), b'{"id": 1}')])
    time.sleep(1.1)
    publish(rabbitmq, stream, [(at(yesterday, "11:00:00"), b'{"id": 2}')])
    src = source(rabbitmq, stream, idle_seconds=30)
    iterator = stream_messages(src, PASSWORD, window(yesterday)[0])
    logged = [next(iterator).logged, next(iterator).logged]
    iterator.close()
    between = logged[0] + (logged[1] - logged[0]) / 2
    late = (between - window(yesterday)[1]).total_seconds()

    began = time.monotonic()
    frame = read_day(source(rabbitmq, stream, idle_seconds=30, late_seconds=late), yesterday)

    assert frame["id"].to_list() == [1]
    assert time.monotonic() - began < 10
    assert read_day(source(rabbitmq, stream), yesterday)["id"].to_list() == [1, 2]


def test_an_empty_stream_gives_an_empty_day(rabbitmq):
    frame = read_day(source(rabbitmq, new_stream(rabbitmq)), DAYS[0])
    assert frame.height == 0 and "_offset" in frame.columns


def test_a_classic_queue_is_refused_with_why_and_what_to_use(rabbitmq):
    queue = new_stream(rabbitmq, kind="classic")
    with pytest.raises(StreamError) as caught:
        read_day(source(rabbitmq, queue), DAYS[0])
    message = str(caught.value)
    assert f"source 'orders_stream', field 'stream': queue '{queue}' on 127.0.0.1:{rabbitmq.amqp_port} is a classic (or quorum) queue" in message
    assert "forgets a message once it is consumed" in message and "x-queue-type: stream" in message


def test_a_missing_stream_is_named(rabbitmq):
    with pytest.raises(StreamError, match=r"field 'stream': stream 'orderz' does not exist on 127\.0\.0\.1:\d+ \(vhost '/'\)"):
        read_day(source(rabbitmq, "orderz"), DAYS[0])


def test_a_wrong_password_is_refused_quickly(rabbitmq, monkeypatch):
    monkeypatch.setenv("RABBIT_SECRET", "wrong")
    began = time.monotonic()
    with pytest.raises(StreamError, match=f"field 'password': RabbitMQ on 127.0.0.1:{rabbitmq.port} refused user 'etl'"):
        read_day(source(rabbitmq, "orders"), DAYS[0])
    assert time.monotonic() - began < 5


def test_a_closed_port_fails_fast_naming_the_host(rabbitmq):
    port = free_port()
    with pytest.raises(StreamError, match=f"field 'host': cannot reach RabbitMQ's stream port on 127.0.0.1:{port}"):
        read_day(source(rabbitmq, "orders", port=port, connect_timeout_seconds=2), DAYS[0])
