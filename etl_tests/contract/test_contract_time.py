"""Contract timestamps and dates: every accepted spelling lands as its exact UTC instant, anything else is a
reject whose reason names the column and the expected format, and a bad `format:` or `timezone:` fails when
the sources file loads. The end-to-end case serves ` UTC` timestamps from a real HTTP server on 127.0.0.1 and
loads them into a real PostgreSQL warehouse."""

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl
import pytest

from etl_resources.config.model import Contract
from etl_resources.config.sources_file import SourcesConfigError, load_sources
from etl_resources.contract.rules import apply_contract

UTC = dt.UTC
DAY = "2026-11-10"
NOT_ISO = (
    "type: not a timestamp; expected ISO 8601 such as 2026-11-10T04:24:31Z, 2026-11-10 "
    "04:24:31.5+01:00 or 2026-11-10 04:24:31 UTC (fix: declare `format:` for other spellings)"
)
FINER = "type: finer than microseconds, which is what the lake keeps (fix: type: string keeps the text)"
NOT_A_DATE = "type: not a date; expected YYYY-MM-DD such as 2026-11-10 (fix: declare `format:` for other spellings; a time of day needs type: timestamp)"


def at(*fields: int, tz=UTC) -> dt.datetime:
    return dt.datetime(*fields, tzinfo=tz)


def split(values: list | pl.Series, dtype: pl.DataType | None = None, **rule) -> tuple[list, list[tuple[str, str]]]:
    """The valid values of column `t` under `rule`, and each reject's (field, reason)."""
    contract = Contract.model_validate({"columns": {"t": {"type": "timestamp", **rule}}})
    frame = pl.DataFrame({"t": pl.Series(values, dtype=dtype)})
    result = apply_contract(contract, frame, 0, DAY)
    reasons = [(e["field"], e["reason"]) for errors in result.rejects["errors"] for e in errors]
    return result.valid["t"].to_list(), reasons


def one(value, dtype: pl.DataType | None = None, **rule):
    valid, reasons = split(value if isinstance(value, pl.Series) else [value], dtype, **rule)
    assert reasons == [], reasons
    return valid[0]


def reason_of(value, dtype: pl.DataType | None = None, **rule) -> str:
    valid, reasons = split([value], dtype, **rule)
    assert valid == [] and len(reasons) == 1, (valid, reasons)
    field, reason = reasons[0]
    assert field == "t"
    return reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-10T04:24:31Z", at(2026, 11, 10, 4, 24, 31)),
        ("2026-11-10 04:24:31Z", at(2026, 11, 10, 4, 24, 31)),
        ("2026-11-10 04:24:31 UTC", at(2026, 11, 10, 4, 24, 31)),  # the seeds' event-time format
        ("2026-11-10T04:24:31UTC", at(2026, 11, 10, 4, 24, 31)),
        ("2026-11-10t04:24:31z", at(2026, 11, 10, 4, 24, 31)),
        ("2026-11-10T04:24:31+02:00", at(2026, 11, 10, 2, 24, 31)),
        ("2026-11-10T04:24:31+0200", at(2026, 11, 10, 2, 24, 31)),
        ("2026-11-10T04:24:31+02", at(2026, 11, 10, 2, 24, 31)),
        ("2026-11-10T04:24:31-05:30", at(2026, 11, 10, 9, 54, 31)),
        ("2026-11-10 04:24:31 +01:00", at(2026, 11, 10, 3, 24, 31)),
        ("2026-11-10 04:24:31+00", at(2026, 11, 10, 4, 24, 31)),  # PostgreSQL's text of a timestamptz
        ("2026-11-10T00:10:00+01:00", at(2026, 11, 9, 23, 10)),
        ("2026-11-10T04:24:31.5Z", at(2026, 11, 10, 4, 24, 31, 500000)),
        ("2026-11-10T04:24:31.123Z", at(2026, 11, 10, 4, 24, 31, 123000)),
        ("2026-11-10T04:24:31.123456Z", at(2026, 11, 10, 4, 24, 31, 123456)),
        ("2026-11-10T04:24:31.123456000Z", at(2026, 11, 10, 4, 24, 31, 123456)),
        ("2026-11-10 04:24:31.000001 UTC", at(2026, 11, 10, 4, 24, 31, 1)),
        ("2026-11-10T04:24:31.25-01:00", at(2026, 11, 10, 5, 24, 31, 250000)),
        ("2026-11-10T04:24:31", at(2026, 11, 10, 4, 24, 31)),
        ("2026-11-10 04:24", at(2026, 11, 10, 4, 24)),
        ("2026-11-10T04:24Z", at(2026, 11, 10, 4, 24)),
        ("2026-11-10", at(2026, 11, 10)),
        ("  2026-11-10T04:24:31Z ", at(2026, 11, 10, 4, 24, 31)),
        ("0001-01-01T00:00:00Z", at(1, 1, 1)),
        ("9999-12-31T23:59:59.999999Z", at(9999, 12, 31, 23, 59, 59, 999999)),
    ],
)
def test_iso_spellings_land_as_their_exact_utc_instant(text, expected):
    assert one(text) == expected


def test_the_lake_type_is_utc_microseconds():
    contract = Contract.model_validate({"columns": {"t": {"type": "timestamp"}, "d": {"type": "date"}}})

    valid = apply_contract(contract, pl.DataFrame({"t": ["2026-11-10 04:24:31 UTC"], "d": ["2026-11-10"]}), 0, DAY).valid

    assert valid.schema == pl.Schema({"t": pl.Datetime("us", "UTC"), "d": pl.Date()})


def test_a_batch_of_mixed_spellings_is_typed_together():
    valid, reasons = split(["2026-11-10T04:24:31Z", "2026-11-10 04:24:31 UTC", "2026-11-10 06:24:31+02:00", None, "2026-11-10"])

    assert reasons == []
    assert valid == [at(2026, 11, 10, 4, 24, 31)] * 3 + [None, at(2026, 11, 10)]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10/11/2026 04:24", NOT_ISO),
        ("2026-11-10 04:24:31 CET", NOT_ISO),
        ("2026-11-10 UTC", NOT_ISO),  # an offset needs a time
        ("2026-1-10T04:24:31Z", NOT_ISO),
        ("2026-02-30T04:24:31Z", NOT_ISO),
        ("2026-11-10T24:00:00Z", NOT_ISO),
        ("2026-11-10T04:60:00Z", NOT_ISO),
        ("2026-11-10T04:24:60Z", NOT_ISO),
        ("2026-11-10T04:24:31+24:00", NOT_ISO),
        ("2026-11-10T04:24:31+02:60", NOT_ISO),
        ("2026-11-10T04:24:31.Z", NOT_ISO),
        ("2026-11-10T04:24:31.1234567890Z", NOT_ISO),
        ("1731212671", NOT_ISO),  # a number as text needs format: epoch_s
        ("2026-11-10T04:24:31.123456789Z", FINER),
        ("2026-11-10 04:24:31.0000005 UTC", FINER),
    ],
)
def test_other_text_is_a_reject_naming_the_expected_spellings(text, reason):
    assert reason_of(text) == reason


def test_a_missing_value_is_not_a_type_error():
    valid, reasons = split(["", None, "2026-11-10"], required=True)

    assert valid == [at(2026, 11, 10)]
    assert reasons == [("t", "required: the value is missing")] * 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-10 04:24:31", at(2026, 11, 10, 3, 24, 31)),  # CET, UTC+1
        ("2026-07-10T04:24:31", at(2026, 7, 10, 2, 24, 31)),  # CEST, UTC+2
        ("2026-11-10", at(2026, 11, 9, 23)),
        ("2026-11-10T04:24:31Z", at(2026, 11, 10, 4, 24, 31)),  # an offset wins over `timezone`
        ("2026-10-25T02:30:00+01:00", at(2026, 10, 25, 1, 30)),  # the repeated hour, with its offset: exact
        ("2026-10-25T02:30:00+02:00", at(2026, 10, 25, 0, 30)),
    ],
)
def test_values_without_an_offset_are_read_in_the_timezone(text, expected):
    assert one(text, timezone="Europe/Berlin") == expected


def test_a_local_time_dst_skips_or_repeats_is_a_reject_saying_which():
    valid, reasons = split(["2026-03-29 02:30:00", "2026-10-25 02:30:00", "2026-10-25 03:30:00"], timezone="Europe/Berlin")

    assert valid == [at(2026, 10, 25, 2, 30)]
    assert reasons == [
        ("t", "type: a local time that does not exist in Europe/Berlin: the clocks skip it at a DST change (fix: send the value with its UTC offset)"),
        ("t", "type: a local time that is ambiguous in Europe/Berlin: the clocks pass it twice at a DST change (fix: send the value with its UTC offset)"),
    ]


@pytest.mark.parametrize(
    ("text", "rule", "expected"),
    [
        ("10/11/2026 04:24", {"format": "%d/%m/%Y %H:%M"}, at(2026, 11, 10, 4, 24)),
        ("10/11/2026 04:24", {"format": "%d/%m/%Y %H:%M", "timezone": "America/New_York"}, at(2026, 11, 10, 9, 24)),
        ("10.11.2026 04:24:31,5", {"format": "%d.%m.%Y %H:%M:%S,%3f"}, None),
        ("10.11.2026 04:24:31,500", {"format": "%d.%m.%Y %H:%M:%S,%3f"}, at(2026, 11, 10, 4, 24, 31, 500000)),
        ("10/11/2026 04:24:31.25 +0100", {"format": "%d/%m/%Y %H:%M:%S%.f %z"}, at(2026, 11, 10, 3, 24, 31, 250000)),
        ("Nov 10 2026 4:24:31 PM UTC", {"format": "%b %d %Y %I:%M:%S %p UTC"}, at(2026, 11, 10, 16, 24, 31)),
        ("20261110", {"format": "%Y%m%d"}, at(2026, 11, 10)),
    ],
)
def test_a_declared_format_is_read_exactly(text, rule, expected):
    if expected is None:
        assert reason_of(text, **rule) == f"type: does not match format {rule['format']!r}"
    else:
        assert one(text, **rule) == expected


def test_with_a_format_other_spellings_are_rejects_naming_it():
    valid, reasons = split(["10/11/2026 04:24", "2026-11-10T04:24:31Z", "10/11/2026 04:24:31.123456789"], format="%d/%m/%Y %H:%M")

    assert valid == [at(2026, 11, 10, 4, 24)]
    assert reasons == [("t", "type: does not match format '%d/%m/%Y %H:%M'")] * 2


def test_a_format_fraction_finer_than_microseconds_is_a_reject():
    valid, reasons = split(["10/11/2026 04:24:31.123456", "10/11/2026 04:24:31.123456789"], format="%d/%m/%Y %H:%M:%S%.f")

    assert valid == [at(2026, 11, 10, 4, 24, 31, 123456)]
    assert reasons == [("t", FINER)]


@pytest.mark.parametrize(
    ("value", "dtype", "fmt", "expected"),
    [
        (1731212671, pl.Int64, "epoch_s", at(2024, 11, 10, 4, 24, 31)),
        ("1731212671", pl.String, "epoch_s", at(2024, 11, 10, 4, 24, 31)),
        ("1731212671.5", pl.String, "epoch_s", at(2024, 11, 10, 4, 24, 31, 500000)),
        ("1731212671.123456", pl.String, "epoch_s", at(2024, 11, 10, 4, 24, 31, 123456)),
        (1731212671.25, pl.Float64, "epoch_s", at(2024, 11, 10, 4, 24, 31, 250000)),
        ("-1.5", pl.String, "epoch_s", at(1969, 12, 31, 23, 59, 58, 500000)),
        (-62135596800, pl.Int64, "epoch_s", at(1, 1, 1)),
        (1731212671123, pl.Int64, "epoch_ms", at(2024, 11, 10, 4, 24, 31, 123000)),
        (1731212671123, pl.UInt64, "epoch_ms", at(2024, 11, 10, 4, 24, 31, 123000)),
        ("1731212671123", pl.String, "epoch_ms", at(2024, 11, 10, 4, 24, 31, 123000)),
        ("1731212671123.456", pl.String, "epoch_ms", at(2024, 11, 10, 4, 24, 31, 123456)),
        (1731212671123.0, pl.Float64, "epoch_ms", at(2024, 11, 10, 4, 24, 31, 123000)),
        (1731212671123456, pl.Int64, "epoch_us", at(2024, 11, 10, 4, 24, 31, 123456)),
    ],
)
def test_epoch_numbers_where_declared(value, dtype, fmt, expected):
    assert one(value, dtype, format=fmt) == expected


@pytest.mark.parametrize(
    ("value", "dtype", "fmt", "reason"),
    [
        ("abc", pl.String, "epoch_s", "type: not a number of seconds since 1970-01-01 UTC within years 1-9999 (format epoch_s)"),
        ("2026-11-10T04:24:31Z", pl.String, "epoch_ms", "type: not a number of milliseconds since 1970-01-01 UTC within years 1-9999 (format epoch_ms)"),
        (10**17, pl.Int64, "epoch_s", "type: not a number of seconds since 1970-01-01 UTC within years 1-9999 (format epoch_s)"),
        ("100000000000000000", pl.String, "epoch_s", "type: not a number of seconds since 1970-01-01 UTC within years 1-9999 (format epoch_s)"),
        ("1731212671.1234567", pl.String, "epoch_s", FINER),
        ("1731212671123.4567", pl.String, "epoch_ms", FINER),
        ("1731212671123456.5", pl.String, "epoch_us", FINER),
    ],
)
def test_epoch_values_out_of_range_or_finer_are_rejects(value, dtype, fmt, reason):
    assert reason_of(value, dtype, format=fmt) == reason


def test_a_number_without_an_epoch_format_is_a_reject_not_microseconds():
    """It used to be cast as microseconds since 1970: 1731212671 became 1970-01-21, silently."""
    assert reason_of(1731212671, pl.Int64) == "type: a number is not a timestamp (fix: declare format: epoch_s, epoch_ms or epoch_us)"


def test_source_datetimes_dates_and_zones():
    berlin = dt.datetime(2026, 11, 10, 5, 24, 31, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert one(pl.Series([berlin]).dt.convert_time_zone("Europe/Berlin")) == at(2026, 11, 10, 4, 24, 31)
    assert one(dt.datetime(2026, 11, 10, 5, 24, 31), timezone="Europe/Berlin") == at(2026, 11, 10, 4, 24, 31)
    assert one(dt.datetime(2026, 11, 10, 5, 24, 31)) == at(2026, 11, 10, 5, 24, 31)
    assert one(dt.date(2026, 11, 10), timezone="Asia/Tokyo") == at(2026, 11, 9, 15)
    nanos = pl.Series(["2026-11-10T04:24:31.123456000", "2026-11-10T04:24:31.123456789"]).str.to_datetime(time_unit="ns")
    assert split(nanos) == ([at(2026, 11, 10, 4, 24, 31, 123456)], [("t", FINER)])


def dates(values, dtype: pl.DataType | None = None, **rule) -> tuple[list, list[str]]:
    contract = Contract.model_validate({"columns": {"d": {"type": "date", **rule}}})
    result = apply_contract(contract, pl.DataFrame({"d": pl.Series(values, dtype=dtype)}), 0, DAY)
    return result.valid["d"].to_list(), [e["reason"] for errors in result.rejects["errors"] for e in errors]


def test_dates_read_iso_and_midnight_and_refuse_a_time_of_day():
    valid, reasons = dates(["2026-11-10", "2026-11-10 00:00:00", "2026-11-10T00:00", "2026-11-10T04:24:31", "10/11/2026", "2026-02-30", "2026-11-10Z"])

    assert valid == [dt.date(2026, 11, 10)] * 3
    assert reasons == [NOT_A_DATE] * 4


def test_dates_with_a_format_and_from_typed_sources():
    assert dates(["10.11.2026", "2026-11-10"], format="%d.%m.%Y") == ([dt.date(2026, 11, 10)], ["type: does not match format '%d.%m.%Y'"])
    assert dates([dt.datetime(2026, 11, 10), dt.datetime(2026, 11, 10, 4)]) == (
        [dt.date(2026, 11, 10)],
        ["type: has a time of day, which a date column would drop (fix: type: timestamp)"],
    )
    assert dates([dt.date(2026, 11, 10)]) == ([dt.date(2026, 11, 10)], [])
    assert dates([20261110]) == ([], ["type: a number is not a date (fix: send YYYY-MM-DD text, or declare type: int)"])


SOURCE = """\
sources:
  - name: events
    kind: rest
    base_url: http://127.0.0.1:1
    path: /events
    start_date: 2026-11-01
    target: {{table: events}}
    contract:
      columns:
        event_time: {rule}
"""


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        (
            "{type: timestamp, timezone: Europe/Brlin}",
            "timezone",
            "unknown time zone 'Europe/Brlin' (fix: an IANA name such as UTC, Europe/Berlin or America/New_York)",
        ),
        ("{type: timestamp, timezone: '+02:00'}", "timezone", "unknown time zone '+02:00'"),
        ("{type: int, format: '%d/%m/%Y'}", "format", "`format` applies to type timestamp or date, not int (fix: remove format, or set the type)"),
        ("{type: string, format: epoch_s}", "format", "`format` applies to type timestamp or date, not string"),
        ("{type: date, format: epoch_s}", "format", "format epoch_s is for type timestamp (fix: type: timestamp)"),
        ("{type: date, timezone: Europe/Berlin}", "timezone", "`timezone` applies to type timestamp, not date (fix: remove timezone, or set type: timestamp)"),
        ("{type: timestamp, format: epoch_ms, timezone: Europe/Berlin}", "timezone", "`timezone` does not apply to format epoch_ms"),
        ("{type: timestamp, format: '%d/%m/%Y %H:%M:%S.%f'}", "format", "chrono reads %f as nanoseconds, so .123456 would become 123 µs; use %.f"),
        ("{type: timestamp, format: '%d/%m/%Y %H:%M %Z'}", "format", "%Z: a zone name is not read"),
        ("{type: timestamp, format: '%s'}", "format", "for seconds since 1970 use format: epoch_s"),
        ("{type: timestamp, format: '%H:%M'}", "format", "cannot read back its own output '04:24' (fix: a strftime format with the year, month and day"),
        ("{type: timestamp, format: '%d/%m/%Y %I:%M'}", "format", "is not a strftime format polars reads"),
        ("{type: date, format: '%d.%m.%Y %H:%M'}", "format", "reads a time of day, which a date column would drop"),
    ],
)
def test_a_bad_format_or_timezone_fails_when_the_file_loads(tmp_path, rule, field, message):
    path = tmp_path / "sources.yaml"
    path.write_text(SOURCE.format(rule=rule))

    with pytest.raises(SourcesConfigError) as raised:
        load_sources(path, None)

    assert f"line 10: source 'events' (sources[0]), field 'contract.columns.event_time.{field}': " in str(raised.value)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "rule",
    ["{type: timestamp, timezone: America/New_York, format: '%d/%m/%Y %H:%M'}", "{type: timestamp, format: epoch_ms}", "{type: date, format: '%d.%m.%Y'}"],
)
def test_good_formats_and_zones_load(tmp_path, rule):
    path = tmp_path / "sources.yaml"
    path.write_text(SOURCE.format(rule=rule))

    assert load_sources(path, None).sources[0].contract.columns["event_time"].type in ("timestamp", "date")


EVENTS = [
    {"id": 1, "event_time": "2026-11-10 00:00:00 UTC", "sent_at": "1794268800"},
    {"id": 2, "event_time": "2026-11-10 04:24:31 UTC", "sent_at": "1794284671.25"},
    {"id": 3, "event_time": "2026-11-10 23:59:59.999999 UTC", "sent_at": "1794355199"},
    {"id": 4, "event_time": "2026-11-10T06:24:31+02:00", "sent_at": 1794284671},
]


@pytest.fixture
def utc_events_api() -> Iterator[str]:
    """An API whose day of events writes timestamps the way the seeds' legacy designs do: `... UTC`."""

    class Events(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps(EVENTS).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Events)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_day_of_utc_suffixed_timestamps_loads_exactly_with_no_rejects(platform, postgres, utc_events_api):
    warehouse = postgres.create_database("utc_events")
    defs = platform.configure(
        f"""
        sources:
          - name: utc_events
            kind: rest
            base_url: {utc_events_api}
            path: /events
            start_date: 2026-11-01
            target: {{schema: ops, table: events}}
            contract:
              columns:
                id: {{type: int, required: true}}
                event_time: {{type: timestamp, required: true}}
                sent_at: {{type: timestamp, format: epoch_s}}
        """,
        warehouse_url=postgres.url(warehouse),
    )

    result = platform.materialize(defs, DAY)

    assert result.success
    assert platform.manifest(defs, "rejects/utc_events", DAY)["rows"] == 0
    rows = platform.query(defs, "SELECT id, event_time, sent_at FROM ops.events ORDER BY id")
    assert rows == [
        (1, at(2026, 11, 10), at(2026, 11, 10)),
        (2, at(2026, 11, 10, 4, 24, 31), at(2026, 11, 10, 4, 24, 31, 250000)),
        (3, at(2026, 11, 10, 23, 59, 59, 999999), at(2026, 11, 10, 23, 59, 59)),
        (4, at(2026, 11, 10, 4, 24, 31), at(2026, 11, 10, 4, 24, 31)),
    ]
    types = platform.query(
        defs,
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'ops' AND table_name = 'events' "
        "AND column_name IN ('event_time', 'sent_at') ORDER BY 1",
    )
    assert types == [("event_time", "timestamp with time zone"), ("sent_at", "timestamp with time zone")]
