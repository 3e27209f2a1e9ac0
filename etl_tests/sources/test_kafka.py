"""The `kafka` kind against a fake: no Kafka broker can be installed where these tests run, so the extractor's
consumer seam (`_consumer(config)`) is pointed at `etl_tests/support/kafka_fake.py`, an in-memory cluster that
answers like confluent_kafka's Consumer (metadata, offsets by time, watermarks, assign, poll, close, error_cb).
`test_a_day_of_a_live_broker_*` runs the same extract against a real broker when ETL_TEST_KAFKA_BOOTSTRAP is set."""

import datetime as dt
import json
import logging
import os
import time
import uuid
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from etl_resources.lake.store import scan_partition
from etl_tests.support.kafka_fake import BOOTSTRAP
from etl_tests.support.servers import free_port

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]
LIVE_VARIABLE = "ETL_TEST_KAFKA_BOOTSTRAP"
HOSTILE = "Zoë 東京 😀 100% 'single' \"double\" back\\slash %s {x}"
BIG = 2**53 + 1


def at(day: str, hour: int, minute: int = 0, millis: int = 0) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=dt.UTC) + dt.timedelta(milliseconds=millis)


def kafka_yaml(topic: str = "orders", bootstrap: str = BOOTSTRAP, extra: str = "", contract: bool = True) -> str:
    rules = (
        """
    contract:
      columns:
        order_id: {type: int, required: true}
        customer: {type: string}
        amount: {type: "decimal(20,2)"}
        note: {type: string}
      keys: [order_id]"""
        if contract
        else ""
    )
    return f"""
sources:
  - name: orders_stream
    kind: kafka
    bootstrap_servers: {bootstrap}
    topic: {topic}
    idle_seconds: 0.2
    timeout_seconds: 2
    start_date: 2026-11-01
    batch_size: 3
    target: {{table: orders}}
    checks: {{reject_rate_max: 0.2, min_rows: 0}}
    step_retries: {{max_retries: 0}}{extra}{rules}
"""


def order(order_id: int, day: str, **fields) -> dict:
    return {"order_id": order_id, "customer": f"{HOSTILE} {day}", "amount": f"{order_id}.25", "note": None} | fields


def fill(kafka_fake, per_day: int = 4) -> dict[str, list[dict]]:
    """Orders spread over two partitions; each day has one at 00:00:00.000 and one at 23:59:59.999."""
    kafka_fake.create_topic("orders", partitions=2)
    written: dict[str, list[dict]] = {day: [] for day in DAYS}
    order_id = 0
    for day in DAYS:
        for i in range(per_day):
            order_id += 1
            when = at(day, 0) if i == 0 else at(day, 23, 59, 59_999) if i == per_day - 1 else at(day, 6 * i, 17, 123)
            record = order(BIG if order_id == 2 else order_id, day)
            kafka_fake.produce("orders", json.dumps(record), key=f"k{order_id}", partition=order_id % 2, timestamp=when)
            written[day].append(record)
    return written


def warehouse_rows(platform, defs, day: str) -> list[tuple]:
    return platform.query(defs, "SELECT order_id, customer, amount, note FROM orders WHERE _partition = :day ORDER BY order_id", day=day)


def test_days_of_a_topic_go_through_lake_checks_and_warehouse_cell_by_cell(platform, kafka_fake):
    written = fill(kafka_fake)
    defs = platform.configure(kafka_yaml())

    result = platform.materialize(defs, DAYS[0], DAYS[-1])

    assert result.success
    for day in DAYS:
        lake = scan_partition(platform.lake(defs), "raw/orders_stream", day).collect()
        expected = sorted((r["order_id"], r["customer"], Decimal(r["amount"]), r["note"]) for r in written[day])
        assert sorted(lake.select("order_id", "customer", "amount", "note").rows()) == expected
        loaded = warehouse_rows(platform, defs, day)
        assert loaded == [(o, c, str(a), n) for o, c, a, n in expected]  # SQLite keeps a decimal as its exact text
    assert any(row[0] == BIG for row in warehouse_rows(platform, defs, DAYS[0]))  # not a float: 2**53+1 kept exactly
    rate = {e.partition: e.passed for e in result.get_asset_check_evaluations() if e.check_name == "reject_rate"}
    assert rate == dict.fromkeys(DAYS, True)
    assert kafka_fake.open_consumers == 0
    assert {consumer.config["group.id"] for consumer in kafka_fake.consumers} == {"etl-orders_stream"}
    assert not any(consumer.config["enable.auto.commit"] for consumer in kafka_fake.consumers)


def test_a_malformed_body_and_a_tombstone_are_rejects_with_reasons_and_a_bad_day_fails_only_its_check(platform, kafka_fake):
    kafka_fake.create_topic("orders")
    for n in range(1, 9):
        kafka_fake.produce("orders", json.dumps(order(n, DAYS[0])), timestamp=at(DAYS[0], 1, n))
    kafka_fake.produce("orders", b'{"order_id": 9, "customer": "unterminated', timestamp=at(DAYS[0], 2))
    for n in range(10, 13):
        kafka_fake.produce("orders", json.dumps(order(n, DAYS[1])), timestamp=at(DAYS[1], 1, n))
    kafka_fake.produce("orders", None, key="k13", timestamp=at(DAYS[1], 2))  # a tombstone
    defs = platform.configure(kafka_yaml())

    result = platform.materialize(defs, DAYS[0], DAYS[1], raise_on_error=False)

    rate = {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == "reject_rate"}
    assert rate[DAYS[0]].passed and rate[DAYS[0]].metadata["rows_rejected"].value == 1
    assert not rate[DAYS[1]].passed and rate[DAYS[1]].metadata["rows_rejected"].value == 1  # 1 of 4 > 0.2
    first = scan_partition(platform.lake(defs), "rejects/orders_stream", DAYS[0]).collect()
    reasons = [error["reason"] for errors in first["errors"].to_list() for error in errors]
    assert any("the body is not JSON" in reason for reason in reasons), reasons
    tombstone = scan_partition(platform.lake(defs), "rejects/orders_stream", DAYS[1]).collect()
    assert json.loads(tombstone["record"][0])["_key"] == "k13" and json.loads(tombstone["record"][0])["body"] == ""
    assert [int(row[0]) for row in warehouse_rows(platform, defs, DAYS[0])] == list(range(1, 9))
    assert warehouse_rows(platform, defs, DAYS[1]) == []


RAW = ["raw/orders_stream_raw", "rejects/orders_stream_rejects"]
KEEP = "\n    contract: {columns: {order_id: {type: int, required: true}}, extra_columns: keep}"


def lake_frame(platform, defs, day: str) -> pl.DataFrame:
    return scan_partition(platform.lake(defs), "raw/orders_stream", day).collect()


def test_a_day_re_extracted_is_identical_and_a_late_message_with_an_old_timestamp_is_in_its_day_next_run(platform, kafka_fake):
    written = fill(kafka_fake)
    defs = platform.configure(kafka_yaml(extra=KEEP, contract=False))
    assert platform.materialize(defs, DAYS[0], selection=RAW).success
    first = lake_frame(platform, defs, DAYS[0])
    assert first["_stream"].unique().to_list() == ["orders"] and set(first["_stream_partition"]) == {0, 1}
    assert first["_timestamp"].min() == at(DAYS[0], 0) and first["_timestamp"].max() == at(DAYS[0], 23, 59, 59_999)
    kafka_fake.produce("orders", json.dumps(order(99, DAYS[2])), partition=0, timestamp=at(DAYS[2], 5))  # other days move on

    assert platform.materialize(defs, DAYS[0], selection=RAW).success
    again = lake_frame(platform, defs, DAYS[0])
    assert again.equals(first) and again.height == len(written[DAYS[0]])

    late = kafka_fake.produce("orders", json.dumps(order(100, DAYS[0])), partition=1, timestamp=at(DAYS[0], 12))  # CreateTime of day 1, logged now
    assert platform.materialize(defs, DAYS[0], selection=RAW).success
    after = lake_frame(platform, defs, DAYS[0])
    assert after.height == first.height + 1
    assert after.filter(pl.col("order_id") == 100).select("_stream_partition", "_offset", "_timestamp").row(0) == (1, late, at(DAYS[0], 12))


def test_an_empty_day_is_an_empty_partition(platform, kafka_fake):
    fill(kafka_fake)
    kafka_fake.produce("orders", json.dumps(order(50, "2026-11-05")), timestamp=at("2026-11-05", 3))
    defs = platform.configure(kafka_yaml())

    assert platform.materialize(defs, "2026-11-04").success

    assert lake_frame(platform, defs, "2026-11-04").height == 0
    assert warehouse_rows(platform, defs, "2026-11-04") == []


def test_a_day_past_the_end_of_the_log_is_empty_and_waits_for_nothing(platform, kafka_fake):
    fill(kafka_fake)
    defs = platform.configure(kafka_yaml())

    assert platform.materialize(defs, "2026-11-20").success
    assert lake_frame(platform, defs, "2026-11-20").height == 0
    assert kafka_fake.open_consumers == 0


def test_a_partition_ending_in_a_transaction_marker_ends_after_idle_seconds(platform, kafka_fake):
    """The high watermark counts the commit marker's offset, which is never delivered: the bounded wait ends the day."""
    kafka_fake.create_topic("orders")
    kafka_fake.produce("orders", json.dumps(order(1, DAYS[0])), timestamp=at(DAYS[0], 1))
    kafka_fake.commit_marker("orders")
    defs = platform.configure(kafka_yaml())

    assert platform.materialize(defs, DAYS[0]).success

    assert [int(row[0]) for row in warehouse_rows(platform, defs, DAYS[0])] == [1]
    assert kafka_fake.consumers[-1].position == {0: 2} and kafka_fake.open_consumers == 0


def test_a_broker_lost_while_a_partition_is_read_fails_the_day_instead_of_cutting_it_short(platform, kafka_fake):
    fill(kafka_fake)
    kafka_fake.down_after = 1

    message = failure(platform, platform.configure(kafka_yaml()))

    assert "field 'bootstrap_servers': lost broker kafka-fake.invalid:9092 at offset 0 of partition 0" in message
    assert platform.materialized_partitions(["raw", "orders_stream_raw"]) == set() and kafka_fake.open_consumers == 0


def test_text_and_bytes_bodies_keep_keys_and_headers_as_columns(platform, kafka_fake):
    kafka_fake.create_topic("orders")
    headers = [("trace", b"abc"), ("Zoë", "東京 😀".encode()), ("trace", b"last"), ("empty", None)]
    kafka_fake.produce("orders", HOSTILE, key=HOSTILE, headers=headers, timestamp=at(DAYS[0], 1))
    kafka_fake.produce("orders", b"\xff\x00raw", key=None, timestamp=at(DAYS[0], 2))
    for body_format in ("text", "bytes"):
        # A contract, so the rows that cannot be read have their rejects asset (without one they are only counted).
        contract = "\n    contract: {columns: {_offset: {type: int, required: true}}, extra_columns: keep}"
        defs = platform.configure(kafka_yaml(extra=f"\n    format: {body_format}{contract}", contract=False))
        assert platform.materialize(defs, DAYS[0], selection=RAW).success
        lake = lake_frame(platform, defs, DAYS[0]).sort("_offset")
        assert json.loads(lake["_headers"][0]) == {"trace": "last", "Zoë": "東京 😀", "empty": ""}
        if body_format == "bytes":
            assert lake["_key"].to_list() == [HOSTILE, None]
            assert lake["_value"].to_list() == [HOSTILE.encode(), b"\xff\x00raw"]
        else:
            assert lake["_key"].to_list() == [HOSTILE] and lake["_value"].to_list() == [HOSTILE]
            rejects = scan_partition(platform.lake(defs), "rejects/orders_stream", DAYS[0]).collect()
            assert rejects["errors"][0][0]["reason"].startswith("the body is not text: the body is not UTF-8 text")


def test_log_append_time_ends_the_day_at_the_first_message_logged_past_it(kafka_fake, platform):
    kafka_fake.create_topic("orders", timestamp_type="LogAppendTime")
    for hour in (1, 2):
        kafka_fake.clock = at(DAYS[0], hour)
        kafka_fake.produce("orders", json.dumps(order(hour, DAYS[0])))
    kafka_fake.clock = at(DAYS[1], 3)  # past the day's end plus late_seconds (1 hour)
    kafka_fake.produce("orders", json.dumps(order(3, DAYS[1])))
    for n in range(4, 10):
        kafka_fake.produce("orders", json.dumps(order(n, DAYS[1])))
    defs = platform.configure(kafka_yaml())

    assert platform.materialize(defs, DAYS[0]).success

    assert sorted(lake_frame(platform, defs, DAYS[0])["order_id"].to_list()) == [1, 2]
    polled = sum(consumer.position.get(0, 0) for consumer in kafka_fake.consumers)
    assert polled == 3  # stopped at the first message of the next day, not read to the end
    assert kafka_fake.open_consumers == 0


def failure(platform, defs, day: str = DAYS[0]) -> str:
    result = platform.materialize(defs, day, raise_on_error=False)
    assert not result.success
    # Every failed attempt's error with its causes, as the run's page shows them.
    return "\n".join(event.event_specific_data.error.to_string() for event in result.all_events if event.event_type_value == "STEP_FAILURE")


def test_a_missing_topic_names_the_source_the_field_the_broker_and_the_fix(platform, kafka_fake):
    fill(kafka_fake)
    message = failure(platform, platform.configure(kafka_yaml(topic="orderz")))
    assert f"source 'orders_stream', field 'topic': topic 'orderz' does not exist on broker {BOOTSTRAP} (fix: correct `topic`" in message


def test_an_unreachable_broker_fails_naming_bootstrap_servers_after_the_step_retries(platform, kafka_fake):
    fill(kafka_fake)
    retried = kafka_yaml(bootstrap="nowhere.invalid:9092").replace("step_retries: {max_retries: 0}", "step_retries: {max_retries: 1, delay_seconds: 0}")
    message = failure(platform, platform.configure(retried))
    assert "source 'orders_stream', field 'bootstrap_servers': no answer from broker nowhere.invalid:9092 within timeout_seconds=2" in message
    assert len(kafka_fake.consumers) == 2 and kafka_fake.open_consumers == 0  # a broker that is down may be back: tried again


def test_a_day_that_retention_cut_into_is_read_from_what_is_left_with_a_warning(kafka_fake, caplog):
    from etl_resources.secrets import SecretStore
    from etl_resources.sources.kafka.extract import kafka_logs
    from etl_resources.sources.kafka.model import KafkaSource
    from etl_resources.sources.streams import day_frames

    fill(kafka_fake)
    kafka_fake.delete_records("orders", 1, 1)  # partition 1's first message (of the first day) is gone
    source = KafkaSource.model_validate(
        {
            "name": "orders_stream",
            "kind": "kafka",
            "bootstrap_servers": BOOTSTRAP,
            "topic": "orders",
            "idle_seconds": 0.2,
            "start_date": DAYS[0],
            "target": {"table": "orders"},
        }
    )
    start = at(DAYS[0], 0)
    log = logging.getLogger("kafka-test")
    with caplog.at_level(logging.WARNING):
        frames = list(day_frames(source, kafka_logs(source, SecretStore(Path("/nonexistent")), start, log), (start, at(DAYS[1], 0)), log))
    assert sorted(pl.concat(frames)["_offset"].to_list()) == [0, 1, 1]  # partition 0: offsets 0, 1; partition 1: offset 1 (offset 0 deleted)
    assert "partition 1 of 'orders' starts at offset 1, after retention deleted older messages" in caplog.text


def test_a_closed_port_fails_within_the_timeout_with_the_real_client(platform):
    """No fake here: librdkafka itself tries 127.0.0.1 on a port nothing listens on, and the day fails in bounded time."""
    port = free_port()
    defs = platform.configure(kafka_yaml(bootstrap=f"127.0.0.1:{port}"))
    started = time.monotonic()

    message = failure(platform, defs)

    assert time.monotonic() - started < 15
    assert f"source 'orders_stream', field 'bootstrap_servers': no answer from broker 127.0.0.1:{port} within timeout_seconds=2" in message


def test_refused_credentials_name_the_credential_fields_and_never_the_password(platform, kafka_fake, monkeypatch):
    fill(kafka_fake)
    kafka_fake.sasl = {"mechanism": "SCRAM-SHA-512", "username": "etl", "password": "right-one"}
    sasl = "\n    security_protocol: SASL_SSL\n    sasl_mechanism: SCRAM-SHA-512\n    sasl_username: etl\n    sasl_password: ${KAFKA_PASSWORD}"
    monkeypatch.setenv("KAFKA_PASSWORD", "wrong-one")

    message = failure(platform, platform.configure(kafka_yaml(extra=sasl)))

    assert "source 'orders_stream', field 'sasl_username', 'sasl_password': broker" in message and "refused the credentials" in message
    assert "wrong-one" not in message
    monkeypatch.setenv("KAFKA_PASSWORD", "right-one")
    assert platform.materialize(platform.configure(kafka_yaml(extra=sasl)), DAYS[0]).success


def test_event_hubs_signs_in_with_the_connection_string(platform, kafka_fake, monkeypatch):
    connection = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=k3y="
    kafka_fake.bootstrap = "ns.servicebus.windows.net:9093"
    kafka_fake.sasl = {"mechanism": "PLAIN", "username": "$ConnectionString", "password": connection}
    fill(kafka_fake)
    monkeypatch.setenv("EH_CONNECTION", connection)
    defs = platform.configure(kafka_yaml(bootstrap="ns.servicebus.windows.net:9093", extra="\n    event_hubs: {connection_string: '${EH_CONNECTION}'}"))

    assert platform.materialize(defs, DAYS[0]).success
    assert lake_frame(platform, defs, DAYS[0]).height == 4
    assert kafka_fake.consumers[0].config["security.protocol"] == "SASL_SSL"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("\n    security_protocol: SASL_SSL", "security_protocol SASL_SSL needs `sasl_mechanism`"),
        (
            "\n    security_protocol: SASL_SSL\n    sasl_mechanism: PLAIN\n    sasl_username: etl",
            "security_protocol SASL_SSL needs `sasl_password`",
        ),
        (
            "\n    security_protocol: SASL_SSL\n    sasl_mechanism: PLAIN\n    sasl_username: etl\n    sasl_password: hunter2",
            "`sasl_password` must be a secret reference",
        ),
        ("\n    sasl_username: etl", "`sasl_username` applies to security_protocol SASL_PLAINTEXT or SASL_SSL, not PLAINTEXT"),
        ("\n    ssl_ca_location: /etc/ca.pem", "`ssl_ca_location` applies to security_protocol SSL or SASL_SSL"),
        ("\n    event_hubs: {connection_string: '${EH}'}", "Event Hubs' Kafka endpoint listens on port 9093"),
        ("\n    partitions: []", "partitions"),
    ],
)
def test_invalid_security_settings_fail_when_the_definitions_load(tmp_path, extra, expected):
    from etl_resources.config.sources_file import SourcesConfigError, load_sources

    (tmp_path / "sources.yaml").write_text(kafka_yaml(extra=extra))
    with pytest.raises(SourcesConfigError) as caught:
        load_sources(tmp_path / "sources.yaml", None)
    assert "source 'orders_stream'" in str(caught.value) and expected in str(caught.value)


def test_a_message_without_a_timestamp_fails_the_day_naming_the_fix(platform, kafka_fake):
    import confluent_kafka as ck

    fill(kafka_fake)
    log = kafka_fake.topics["orders"].partitions[1]
    log.append(ck.Message(topic="orders", partition=1, offset=len(log), value=b"{}", timestamp=(ck.TIMESTAMP_NOT_AVAILABLE, -1)))

    message = failure(platform, platform.configure(kafka_yaml()))

    assert f"field 'timestamp_header': partition 1 offset {len(log) - 1} of 'orders' has no timestamp" in message
    assert kafka_fake.open_consumers == 0


def test_an_unknown_partition_is_named(platform, kafka_fake):
    fill(kafka_fake)
    message = failure(platform, platform.configure(kafka_yaml(extra="\n    partitions: [0, 7]")))
    assert "field 'partitions': topic 'orders' has no partition 7; it has [0, 1]" in message


def test_a_day_of_a_live_broker_reads_what_was_produced():
    """Against the real confluent_kafka clients: a unique topic, messages with explicit timestamps, one day read."""
    bootstrap = os.environ.get(LIVE_VARIABLE)
    if not bootstrap:
        pytest.skip(f"{LIVE_VARIABLE} is not set: no Kafka broker to test against (set it to host:port of a PLAINTEXT broker)")
    from etl_tests.support.kafka_live import live_day

    written, read = live_day(bootstrap, f"etl-test-{uuid.uuid4().hex[:10]}", DAYS[0])
    assert read == written
