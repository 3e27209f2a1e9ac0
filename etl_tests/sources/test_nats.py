"""NATS JetStream sources (`kind: nats`) against a real nats-server with JetStream and user/password auth, started
for the session by `etl_tests/support/nats_server.py`.

The server logs each message when the test publishes it, today, while the days read lie weeks back: the event time
is in an `Event-Time` header (or a body field), and the sources set `late_seconds` to a year. With the default hour a
day's read would stop at the first message logged after its end plus an hour, which here is the first message of all;
in production that stop is what ends a day, and a year only means the read goes on to the stream's end.
"""

import asyncio
import datetime as dt
import json
import logging
import time
import uuid
from decimal import Decimal

import nats
import polars as pl
import pytest
from pydantic import ValidationError

from etl_resources.lake.store import scan_partition
from etl_resources.secrets import SecretResolver
from etl_resources.sources.base import ExtractRun
from etl_resources.sources.nats import KIND
from etl_resources.sources.nats.model import NatsSource
from etl_resources.sources.streams import StreamError
from etl_tests.support.nats_server import NATS_PASSWORD, NATS_TOKEN, NATS_USER, NatsServer

A_YEAR = 365 * 24 * 3600
RAW = "raw/nats_orders"
HOSTILE = ["100% 'quoted' \"double\"", "back\\slash \\n not a newline", "Zoë 東京 😀", "MiXeD CaSe"]
BIG = 2**53 + 1
CONTRACT = """    contract:
      columns:
        order_id: {type: int, required: true}
        customer: {type: string, trim: false}
        amount: {type: "decimal(12,2)"}
        big: {type: int}
        note: {type: string}
        _timestamp: {type: timestamp, required: true}
        _offset: {type: int}
        _key: {type: string}
"""


def publish(server: NatsServer, stream: str, messages: list[tuple[str, bytes, dict[str, str]]], **sign_in: str) -> None:
    """Create the stream if it is new, then publish each (subject, body, headers) and wait for the server's ack."""

    async def run() -> None:
        client = await nats.connect(server.url, **(sign_in or {"user": NATS_USER, "password": NATS_PASSWORD}))
        js = client.jetstream()
        try:
            await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(name=stream, subjects=[f"{stream}.>"])
        for subject, body, headers in messages:
            await js.publish(subject.replace("orders", stream), body, headers=headers or None)
        await client.close()

    asyncio.run(run())


def order(stream: str, day: str, time_of_day: str, body: dict | bytes, subject: str = "orders.eu") -> tuple[str, bytes, dict[str, str]]:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return subject, data, {"Event-Time": f"{day}T{time_of_day}Z"}


def unique_stream() -> str:
    return f"orders_{uuid.uuid4().hex[:8]}"


def sources_yaml(server: NatsServer, stream: str, extra: str = "", contract: bool = True, reject_rate_max: float = 0.4) -> str:
    declared = CONTRACT if contract else ""
    return f"""
sources:
  - name: nats_orders
    kind: nats
    servers: [{server.url}]
    stream: {stream}
    username: {NATS_USER}
    password: ${{NATS_TEST_PASSWORD}}
    timestamp_header: Event-Time
    late_seconds: {A_YEAR}   # see the module's docstring: the test publishes today for days weeks back
    idle_seconds: 2
    start_date: 2026-11-01
    target: {{table: nats_orders}}
{declared}    checks: {{reject_rate_max: {reject_rate_max}, min_rows: 0, schema_change: false}}
{extra}"""


def source(server: NatsServer, stream: str, /, **fields) -> NatsSource:
    base = {"name": "nats_orders", "kind": "nats", "servers": server.url, "stream": stream, "username": NATS_USER, "password": "${NATS_TEST_PASSWORD}"}
    base |= {"late_seconds": A_YEAR, "idle_seconds": 2, "start_date": "2026-11-01", "target": {"table": "nats_orders"}}
    return NatsSource.model_validate(base | fields)


def run_of(day: str) -> ExtractRun:
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return ExtractRun(window=(start, start + dt.timedelta(days=1)), partition_key=day, secrets=SecretResolver(), lake=None, log=logging.getLogger("test"))


def extract(nats_source: NatsSource, day: str) -> pl.DataFrame:
    """The day as the raw asset gets it, its frames in one."""
    return pl.concat(list(KIND.extract(nats_source, run_of(day))), how="diagonal_relaxed")


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_TEST_PASSWORD", NATS_PASSWORD)


def test_days_land_in_the_lake_and_the_warehouse_cell_by_cell_and_a_bad_day_alone_is_refused(platform, nats_jetstream):
    stream = unique_stream()
    good = [{"order_id": i, "customer": name, "amount": 12.34 + i, "big": BIG, "note": None} for i, name in enumerate(HOSTILE, 1)]
    publish(
        nats_jetstream,
        stream,
        [
            order(stream, "2026-11-20", "08:00:00.123456", good[0]),
            order(stream, "2026-11-20", "23:59:59.999999", good[1]),
            order(stream, "2026-11-21", "00:00:00", good[2]),
            order(stream, "2026-11-21", "09:00:00", b'{"order_id": 99, "customer": "cut off'),
            order(stream, "2026-11-21", "10:00:00", good[3]),
            order(stream, "2026-11-22", "01:00:00", {"order_id": "not a number"}),
            order(stream, "2026-11-22", "02:00:00", b"\xff\xfe not text"),
            order(stream, "2026-11-22", "03:00:00", {"order_id": 7, "customer": "ok"}),
            order(stream, "2026-11-19", "12:00:00", {"order_id": 0, "customer": "the day before"}),
        ],
    )
    defs = platform.configure(sources_yaml(nats_jetstream, stream))

    result = platform.materialize(defs, "2026-11-20", "2026-11-23", raise_on_error=False)

    assert not result.success  # 2026-11-22 is refused; the other days load
    rate = {e.partition: e.passed for e in result.get_asset_check_evaluations() if e.check_name == "reject_rate"}
    assert rate == {"2026-11-20": True, "2026-11-21": True, "2026-11-22": False, "2026-11-23": True}
    lake = platform.lake(defs)
    assert [platform.manifest(defs, RAW, day)["rows"] for day in ("2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23")] == [2, 2, 1, 0]
    rows = platform.query(defs, "SELECT _partition, order_id, customer, amount, big, note, _timestamp, _key FROM nats_orders ORDER BY order_id")
    # SQLite keeps a NUMERIC(12,2) as a REAL, so the warehouse's cell is read back through its text.
    assert [(*row[:3], Decimal(str(row[3])), *row[4:6]) for row in rows] == [
        ("2026-11-20", 1, HOSTILE[0], Decimal("13.34"), BIG, None),
        ("2026-11-20", 2, HOSTILE[1], Decimal("14.34"), BIG, None),
        ("2026-11-21", 3, HOSTILE[2], Decimal("15.34"), BIG, None),
        ("2026-11-21", 4, HOSTILE[3], Decimal("16.34"), BIG, None),
    ]
    assert {row[7] for row in rows} == {f"{stream}.eu"}
    raw = scan_partition(lake, RAW, "2026-11-20").collect()
    microseconds = [dt.datetime(2026, 11, 20, 8, 0, 0, 123456, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=dt.UTC)]
    assert raw["_timestamp"].to_list() == microseconds
    assert raw["_offset"].to_list() == [1, 2]
    assert raw["amount"].to_list() == [Decimal("13.34"), Decimal("14.34")]
    rejects = scan_partition(lake, "rejects/nats_orders", "2026-11-21").collect()
    [reason] = [error["reason"] for errors in rejects["errors"].to_list() for error in errors if error["field"] == "(record)"]
    assert reason.startswith("the body is not JSON: Unterminated string")
    assert json.loads(rejects["record"][0])["body"] == '{"order_id": 99, "customer": "cut off'
    bad_day = [error["reason"] for errors in scan_partition(lake, "rejects/nats_orders", "2026-11-22").collect()["errors"].to_list() for error in errors]
    assert "the body is not UTF-8 text ('//4gbm90IHRleHQ=' in base64)" in " ".join(bad_day)
    assert any(reason.startswith("type:") for reason in bad_day)


def test_a_day_re_extracted_is_the_same_and_a_late_message_joins_its_day(platform, nats_jetstream):
    stream = unique_stream()
    publish(nats_jetstream, stream, [order(stream, "2026-11-20", f"0{i}:00:00", {"order_id": i, "customer": HOSTILE[i % 4]}) for i in range(1, 6)])
    defs = platform.configure(sources_yaml(nats_jetstream, stream))
    raw_only = [f"{RAW}_raw"]

    assert platform.materialize(defs, "2026-11-20", selection=raw_only).success
    first = scan_partition(platform.lake(defs), RAW, "2026-11-20").collect()
    first_manifest = platform.manifest(defs, RAW, "2026-11-20")
    assert platform.materialize(defs, "2026-11-20", selection=raw_only).success
    again = scan_partition(platform.lake(defs), RAW, "2026-11-20").collect()

    assert first["order_id"].to_list() == [1, 2, 3, 4, 5]
    assert again.equals(first)
    manifest = platform.manifest(defs, RAW, "2026-11-20")
    assert manifest["rows"] == first_manifest["rows"] == 5
    assert manifest["schema"] == first_manifest["schema"]

    late_ones = [order(stream, "2026-11-20", "23:30:00", {"order_id": 6, "customer": "late"}), order(stream, "2026-11-21", "00:10:00", {"order_id": 7})]
    publish(nats_jetstream, stream, late_ones)
    assert platform.materialize(defs, "2026-11-20").success
    late = scan_partition(platform.lake(defs), RAW, "2026-11-20").collect()
    assert late["order_id"].to_list() == [1, 2, 3, 4, 5, 6]
    assert late.head(5).equals(first)
    assert sorted(row[0] for row in platform.query(defs, "SELECT order_id FROM nats_orders")) == [1, 2, 3, 4, 5, 6]


def test_event_time_from_a_body_field_and_a_subject_filter(nats_jetstream):
    stream = unique_stream()
    publish(
        nats_jetstream,
        stream,
        [
            ("orders.eu", json.dumps({"id": 1, "at": "2026-11-20T10:00:00+02:00"}).encode(), {}),
            ("orders.us", json.dumps({"id": 2, "at": "2026-11-20T10:00:00Z"}).encode(), {}),
            ("orders.eu", json.dumps({"id": 3, "at": 1795651200000}).encode(), {}),  # 2026-11-21T00:00:00Z in ms: the next day
            ("orders.eu", json.dumps({"id": 4, "at": "2026-11-20T23:59:59.999999Z", "nested": {"x": [1, None]}}).encode(), {}),
        ],
    )

    frame = extract(source(nats_jetstream, stream, timestamp_field="at", subject=f"{stream}.eu", nested="flatten"), "2026-11-20")

    assert frame["id"].to_list() == [1, 4]
    assert frame["_timestamp"].to_list() == [dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=dt.UTC)]
    assert frame["nested_x"].to_list() == [None, "[1, null]"]
    assert frame["_key"].to_list() == [f"{stream}.eu"] * 2
    assert frame["_stream_partition"].to_list() == [None, None]


def test_text_and_bytes_bodies_with_headers_as_columns(nats_jetstream):
    stream = unique_stream()
    headers = {"Event-Time": "2026-11-20T06:00:00Z", "Trace": "a%b'c\"d\\e Zoë"}
    publish(nats_jetstream, stream, [("orders.eu", "plain Zoë 東京 😀 %s".encode(), headers), ("orders.eu", b"\x00\xff\x10", headers)])

    text = extract(source(nats_jetstream, stream, format="text", timestamp_header="Event-Time"), "2026-11-20")
    raw = extract(source(nats_jetstream, stream, format="bytes", timestamp_header="Event-Time"), "2026-11-20")

    assert text["_value"].to_list()[0] == "plain Zoë 東京 😀 %s"
    assert text["__parse_error"].to_list()[1].startswith("the body is not text: the body is not UTF-8 text")
    assert json.loads(text["_headers"][0]) == headers
    assert raw["_value"].to_list() == ["plain Zoë 東京 😀 %s".encode(), b"\x00\xff\x10"]
    assert raw.schema["_value"] == pl.Binary and raw["__parse_error"].to_list() == [None, None]


def test_an_empty_day_is_one_empty_frame_without_waiting(nats_jetstream):
    stream = unique_stream()
    publish(nats_jetstream, stream, [order(stream, "2026-11-20", "06:00:00", {"order_id": 1})])
    started = time.monotonic()

    frames = list(KIND.extract(source(nats_jetstream, stream, timestamp_header="Event-Time"), run_of("2099-01-01")))

    # Nothing was logged after the day's start, so the consumer has nothing pending and the read ends at once.
    assert [len(frame) for frame in frames] == [0] and time.monotonic() - started < 2
    assert len(extract(source(nats_jetstream, stream, timestamp_header="Event-Time"), "2026-11-21")) == 0


def consumers(server: NatsServer, stream: str) -> int:
    async def run() -> int:
        client = await nats.connect(server.url, user=NATS_USER, password=NATS_PASSWORD)
        try:
            return (await client.jetstream().stream_info(stream)).state.consumer_count
        finally:
            await client.close()

    return asyncio.run(run())


def test_the_read_stops_at_the_first_message_logged_past_the_day_and_releases_its_consumer(nats_jetstream):
    stream = unique_stream()
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date().isoformat()
    publish(nats_jetstream, stream, [order(stream, yesterday, "12:00:00", {"order_id": i}) for i in range(3)])

    # Logged today, after yesterday's end: with no lateness allowed, the first message ends the day, unread.
    assert len(extract(source(nats_jetstream, stream, timestamp_header="Event-Time", late_seconds=0), yesterday)) == 0
    assert extract(source(nats_jetstream, stream, timestamp_header="Event-Time"), yesterday)["order_id"].to_list() == [0, 1, 2]
    assert consumers(nats_jetstream, stream) == 0


def test_a_token_signs_in(nats_token_jetstream, monkeypatch):
    monkeypatch.setenv("NATS_TEST_TOKEN", NATS_TOKEN)
    stream = unique_stream()
    publish(nats_token_jetstream, stream, [order(stream, "2026-11-20", "06:00:00", {"order_id": 1})], token=NATS_TOKEN)

    token_source = source(nats_token_jetstream, stream, username=None, password=None, token="${NATS_TEST_TOKEN}", timestamp_header="Event-Time")

    assert extract(token_source, "2026-11-20")["order_id"].to_list() == [1]


def test_a_missing_stream_names_the_field_and_the_streams_there(nats_jetstream):
    stream = unique_stream()
    publish(nats_jetstream, stream, [order(stream, "2026-11-20", "06:00:00", {"order_id": 1})])

    with pytest.raises(StreamError) as err:
        extract(source(nats_jetstream, "orderz"), "2026-11-20")

    assert "source 'nats_orders', field 'stream': stream 'orderz' does not exist on NATS at nats://127.0.0.1:" in str(err.value)
    assert stream in str(err.value) and "(fix: correct `stream`" in str(err.value)
    refused = f"source 'nats_orders', field 'subject': the server refused a consumer on stream '{stream}' with subject 'invoices.>'"
    with pytest.raises(StreamError, match=refused):
        extract(source(nats_jetstream, stream, subject="invoices.>"), "2026-11-20")


def test_a_message_without_its_event_time_is_a_reject_kept_in_the_server_day(nats_jetstream):
    stream = unique_stream()
    publish(nats_jetstream, stream, [("orders.eu", b'{"order_id": 1}', {}), ("orders.eu", b'{"order_id": 2}', {"Event-Time": "yesterday"})])
    today = dt.datetime.now(dt.UTC).date().isoformat()

    frame = extract(source(nats_jetstream, stream, timestamp_header="Event-Time"), today)

    assert frame["order_id"].to_list() == [1, 2]
    assert [reason.split(";")[0] for reason in frame["__parse_error"].to_list()] == [
        "event time from header 'Event-Time': missing",
        "event time from header 'Event-Time': Invalid isoformat string: 'yesterday'",
    ]


def test_bad_credentials_name_the_credential_fields(nats_jetstream, monkeypatch):
    monkeypatch.setenv("NATS_TEST_PASSWORD", "wrong")

    with pytest.raises(StreamError, match=r"source 'nats_orders', fields 'username' and 'password': NATS at .* refused the sign-in"):
        extract(source(nats_jetstream, "anything"), "2026-11-20")
    with pytest.raises(StreamError, match=r"field 'token': NATS at .* refused the sign-in"):
        extract(source(nats_jetstream, "anything", username=None, password=None, token="not-the-token"), "2026-11-20")


def test_an_unreachable_server_fails_fast_naming_servers():
    from etl_tests.support.servers import free_port

    started = time.monotonic()
    expected = r"source 'nats_orders', field 'servers': no NATS server answered at nats://127.0.0.1:\d+ within connect_timeout_seconds=1"
    with pytest.raises(StreamError, match=expected):
        extract(source(NatsServer(port=free_port(), monitor_port=0), "orders", connect_timeout_seconds=1), "2026-11-20")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"servers": "nats://etl:pw@127.0.0.1:4222"}, "holds a user or password"),
        ({"servers": "http://127.0.0.1:4222"}, "is not a NATS server URL"),
        ({"password": None}, "`username` and `password` go together"),
        ({"token": "${NATS_TOKEN}"}, "give one way to sign in, not username and token"),
        ({"stream": "orders.eu"}, "is not a JetStream stream name"),
        ({"tls": {"cert_file": "/etc/etl/client.pem"}}, "mutual TLS needs both `cert_file` and `key_file`"),
    ],
)
def test_invalid_combinations_fail_when_the_definitions_load(fields, message):
    with pytest.raises(ValidationError, match=message):
        source(NatsServer(port=4222, monitor_port=0), "orders", **fields)


def test_the_json_schema_accepts_one_server_url_or_a_list():
    import jsonschema

    from etl_resources.config.cli import json_schema

    entry = {"name": "n", "kind": "nats", "stream": "ORDERS", "start_date": "2026-11-01", "target": {"table": "n"}}
    validator = jsonschema.Draft202012Validator(json_schema())
    for servers in ("nats://a:4222", ["nats://a:4222", "nats://b:4222"]):
        assert list(validator.iter_errors({"sources": [entry | {"servers": servers}]})) == []
        assert source(NatsServer(port=4222, monitor_port=0), "ORDERS", servers=servers).servers[0] == "nats://a:4222"
    assert list(validator.iter_errors({"sources": [entry | {"servers": []}]})) != []


def test_without_a_contract_a_broken_message_is_a_reject_and_every_message_column_reaches_the_warehouse(platform, nats_jetstream):
    stream = unique_stream()
    publish(
        nats_jetstream,
        stream,
        [order(stream, "2026-11-20", "08:00:00", {"order_id": 1, "customer": HOSTILE[2]}), order(stream, "2026-11-20", "09:00:00", b"{not json")],
    )
    defs = platform.configure(sources_yaml(nats_jetstream, stream, contract=False, reject_rate_max=0.5))

    result = platform.materialize(defs, "2026-11-20")

    [verdict] = [e for e in result.get_asset_check_evaluations() if e.check_name == "reject_rate"]
    assert verdict.passed and verdict.metadata["rows_rejected"].value == 1
    [reject] = scan_partition(platform.lake(defs), "rejects/nats_orders", "2026-11-20").collect().to_dicts()
    assert "the body is not JSON" in reject["errors"][0]["reason"] and json.loads(reject["record"])["body"] == "{not json"
    columns = "_stream, _stream_partition, _offset, _key, order_id, customer, _partition"
    assert platform.query(defs, f"SELECT {columns} FROM nats_orders") == [(stream, None, 1, f"{stream}.eu", 1, HOSTILE[2], "2026-11-20")]
