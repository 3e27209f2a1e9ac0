"""The day reader every stream kind shares, fed with messages built here: which messages make a day, where the
read stops, and how bodies, keys and headers become columns. The kinds' own tests run it against real brokers
(RabbitMQ, NATS) and the Kafka client's fake."""

import datetime as dt
import json

import polars as pl
import pytest

from etl_resources.contract.rules import PARSE_ERROR
from etl_resources.sources.streams import Message, StreamError, StreamSource, day_frames, event_time

DAY = (dt.datetime(2026, 11, 20, tzinfo=dt.UTC), dt.datetime(2026, 11, 21, tzinfo=dt.UTC))


def at(hour: float) -> dt.datetime:
    return DAY[0] + dt.timedelta(hours=hour)


def source(**fields) -> StreamSource:
    return StreamSource(name="events", start_date="2026-11-01", target={"table": "events"}, **fields)


def message(offset: int, hour: float, body: object, partition: int | None = 0, logged: float | None = None, **extra) -> Message:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return Message("orders", partition, offset, at(hour), data, logged=None if logged is None else at(logged), **extra)


class Closing:
    """A partition's iterator that records whether the reader closed it, as a kind's generator releases its consumer."""

    def __init__(self, messages: list[Message]):
        self.messages, self.read, self.closed = messages, 0, False

    def __iter__(self):
        return self

    def __next__(self) -> Message:
        if self.read >= len(self.messages):
            raise StopIteration
        self.read += 1
        return self.messages[self.read - 1]

    def close(self) -> None:
        self.closed = True


def read(src: StreamSource, *logs) -> pl.DataFrame:
    return pl.concat(list(day_frames(src, logs, DAY)), how="diagonal_relaxed")


def test_a_day_is_the_messages_of_its_event_time_in_log_order_across_partitions():
    p0 = [message(0, -1, {"id": 0}), message(1, 1, {"id": 1}), message(2, 23.99, {"id": 2}), message(3, 24, {"id": 3})]
    p1 = [message(7, 5, {"id": 7}, partition=1), message(8, -0.5, {"id": 8}, partition=1)]
    frame = read(source(), p0, p1)
    assert frame["id"].to_list() == [1, 2, 7]
    assert frame["_stream_partition"].to_list() == [0, 0, 1]
    assert frame["_offset"].to_list() == [1, 2, 7]
    assert frame["_timestamp"].to_list() == [at(1), at(23.99), at(5)]
    assert frame[PARSE_ERROR].null_count() == 3


def test_the_read_stops_at_the_first_message_logged_past_the_day_end_plus_late_seconds_and_closes_the_iterator():
    late = message(5, 3, {"id": "late but within"}, logged=24.5)
    beyond = message(6, 23, {"id": "logged too late"}, logged=25)
    after = message(7, 2, {"id": "never read"}, logged=26)
    log = Closing([message(4, 2, {"id": "on time"}, logged=2), late, beyond, after])
    frame = read(source(late_seconds=3600), log)
    assert frame["id"].to_list() == ["on time", "late but within"]
    assert log.closed and log.read == 3


def test_a_producer_time_far_ahead_does_not_end_the_day_when_the_log_time_is_known():
    log = [message(0, 24 * 30, {"id": "clock ahead"}, logged=1), message(1, 2, {"id": "after it"}, logged=2)]
    assert read(source(), log)["id"].to_list() == ["after it"]


def test_without_a_log_time_the_log_is_read_to_its_end_so_a_late_message_is_in_its_day():
    log = [message(0, 1, {"id": "on time"}), message(1, 30, {"id": "tomorrow"}), message(2, 4, {"id": "late, old timestamp"})]
    assert read(source(), log)["id"].to_list() == ["on time", "late, old timestamp"]


def test_a_message_delivered_twice_is_kept_once():
    first = message(3, 1, {"id": 3})
    assert read(source(), [first, message(4, 2, {"id": 4}), first])["_offset"].to_list() == [3, 4]


def test_an_empty_day_is_one_empty_frame_with_the_message_columns():
    frames = list(day_frames(source(format="text"), [[message(0, -3, {"id": 0})]], DAY))
    assert len(frames) == 1 and frames[0].height == 0
    assert frames[0].schema["_timestamp"] == pl.Datetime("us", "UTC") and frames[0].schema["_value"] == pl.String


def test_frames_hold_at_most_batch_size_rows():
    frames = list(day_frames(source(batch_size=2), [[message(i, 1, {"id": i}) for i in range(5)]], DAY))
    assert [frame.height for frame in frames] == [2, 2, 1]


def test_event_time_from_a_header_places_the_message_and_a_broken_one_is_rejected_in_the_broker_day():
    src = source(timestamp_header="Event-Time", timestamp_unit="ms")
    ms = int(at(6).timestamp() * 1000) + 123
    log = [
        message(0, -5, {"id": "header says today"}, headers={"Event-Time": str(ms).encode()}),
        message(1, 3, {"id": "header says yesterday"}, headers={"Event-Time": "2026-11-19T23:00:00"}),
        message(2, 4, {"id": "no header"}),
        message(3, 5, {"id": "garbage"}, headers={"Event-Time": b"soon"}),
    ]
    frame = read(src, log)
    assert frame["id"].to_list() == ["header says today", "no header", "garbage"]
    assert frame["_timestamp"][0] == at(6) + dt.timedelta(milliseconds=123)
    errors = frame[PARSE_ERROR].to_list()
    assert errors[0] is None
    assert "header 'Event-Time': missing" in errors[1] and "soon" in errors[2]


def test_event_time_from_a_body_field_in_seconds_or_iso_text():
    src = source(timestamp_field="meta.at", timestamp_unit="s")
    log = [
        message(0, -5, {"id": 1, "meta": {"at": int(at(2).timestamp())}}),
        message(1, -5, {"id": 2, "meta": {"at": "2026-11-20T10:00:00.000001+01:00"}}),
    ]
    frame = read(src, log)
    assert frame["_timestamp"].to_list() == [at(2), at(9) + dt.timedelta(microseconds=1)]


def test_json_values_arrive_exactly_and_hostile_text_is_unchanged():
    text = "100% 'single' \"double\" back\\slash Zoë 東京 😀"
    body = {"Id": 2**53 + 1, "Name": text, "price": "12345678901234567890.123456789", "none": None, "nested": {"k": ["é", 1]}}
    frame = read(source(), [message(0, 1, body, key="Clé %", headers={"Trace-ID": b"\xc3\xa9t\xc3\xa9"})])
    row = frame.row(0, named=True)
    assert row["Id"] == 2**53 + 1 and frame.schema["Id"] == pl.Int64
    assert row["Name"] == text and row["price"] == "12345678901234567890.123456789" and row["none"] is None
    assert json.loads(row["nested"]) == {"k": ["é", 1]} and "é" in row["nested"]
    assert row["_key"] == "Clé %" and json.loads(row["_headers"]) == {"Trace-ID": "été"}


def test_a_body_that_is_not_json_or_clashes_with_a_message_column_is_a_parse_error_with_its_original_kept():
    frame = read(source(), [message(0, 1, b"{not json"), message(1, 2, {"_offset": 9, "id": 1})])
    errors = frame[PARSE_ERROR].to_list()
    assert "the body is not JSON" in errors[0]
    assert "'_offset'" in errors[1] and "rename it" in errors[1]
    assert frame["_offset"].to_list() == [0, 1]
    assert json.loads(frame["_record"][0])["body"] == "{not json"


def test_text_and_bytes_bodies_are_one_value_column():
    raw = b"\x00\xffbinary"
    text = read(source(format="text"), [message(0, 1, "plain ünïcode".encode(), key=b"k1"), message(1, 2, raw)])
    assert text["_value"].to_list() == ["plain ünïcode", None]
    assert "not UTF-8" in text[PARSE_ERROR][1] and json.loads(text["_record"][1])["body"].startswith("base64:")
    data = read(source(format="bytes"), [message(0, 1, raw, key=b"k1")])
    assert data.schema["_value"] == pl.Binary and data["_value"][0] == raw and data["_key"][0] == "k1"


def test_a_day_not_read_within_max_seconds_fails_naming_the_field_and_the_fix():
    def endless():
        offset = 0
        while True:
            offset += 1
            yield message(offset, 1, {"id": offset})

    with pytest.raises(StreamError, match=r"source 'events', field 'max_seconds'.*fix: raise `max_seconds`"):
        list(day_frames(source(max_seconds=0.2), [endless()], DAY))


def test_config_refuses_two_event_times_and_a_body_field_without_json():
    with pytest.raises(ValueError, match="not both"):
        source(timestamp_header="h", timestamp_field="f")
    with pytest.raises(ValueError, match="needs `format: json`"):
        source(timestamp_field="f", format="text")


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1_763_596_800, "s", dt.datetime(2025, 11, 20, tzinfo=dt.UTC)),
        ("1763596800000", "ms", dt.datetime(2025, 11, 20, tzinfo=dt.UTC)),
        (1_763_596_800_000_001, "us", dt.datetime(2025, 11, 20, 0, 0, 0, 1, tzinfo=dt.UTC)),
        (b"2025-11-20T01:00:00+01:00", "ms", dt.datetime(2025, 11, 20, tzinfo=dt.UTC)),
    ],
)
def test_event_time_spellings(value, unit, expected):
    assert event_time(value, unit) == expected


@pytest.mark.parametrize("value", [True, None, float("nan"), "yesterday", [1]])
def test_event_time_refuses_what_is_no_time(value):
    with pytest.raises(ValueError):
        event_time(value, "ms")


def test_a_stream_source_without_a_contract_still_has_rejects_and_a_gating_reject_rate_check():
    """Parse errors of a stream kind are rejects even without a contract, so the rejects asset and the gate exist."""
    from etl_assets.checks.gate import gating_checks
    from etl_resources.config.sources_file import sources_model
    from etl_resources.sources.registry import splits_rejects

    entry = {"name": "bus", "kind": "nats", "servers": "nats://127.0.0.1:4222", "stream": "ORDERS", "start_date": "2026-11-01", "target": {"table": "bus"}}
    parsed = sources_model().model_validate({"sources": [entry]})
    [bus] = parsed.sources
    assert bus.contract is None and splits_rejects(bus) and gating_checks(bus) == ["reject_rate"]
