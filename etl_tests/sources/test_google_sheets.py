"""Google Sheets sources against `etl_tests/support/sheets_server.py`, a local server on 127.0.0.1 that answers like
Google's token endpoint and the Sheets API v4 (no Google endpoint can run here): it checks the signed JWT with the
test key's public key, trims rows as the API does and sends Google's error bodies. The live test at the end
reads the real API when ETL_TEST_GOOGLE_SHEETS_KEY_FILE and ETL_TEST_GOOGLE_SHEET_ID are set."""

import datetime as dt
import json
import logging
import os
import uuid
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from etl_resources.config.excel import row_of, write_workbook
from etl_resources.config.sources_file import load_sources
from etl_resources.lake.store import scan_partition
from etl_resources.secrets import SecretResolver
from etl_resources.sources.base import ExtractRun
from etl_resources.sources.google_sheets.auth import GoogleSheetsError
from etl_resources.sources.google_sheets.extract import extract_day
from etl_resources.sources.google_sheets.model import GoogleSheetsSource
from etl_tests.support.sheets_server import Date, SheetsServer, service_account_key

DAY, NEXT_DAY = "2026-11-10", "2026-11-11"
LOG = logging.getLogger("test")
KEY_FILE_VARIABLE, SHEET_VARIABLE, RANGE_VARIABLE = "ETL_TEST_GOOGLE_SHEETS_KEY_FILE", "ETL_TEST_GOOGLE_SHEET_ID", "ETL_TEST_GOOGLE_SHEET_RANGE"
HOSTILE = "Zoë 東京 😀"
HEADER = ["id", HOSTILE, "100% \"q\" 'x'", "back\\slash", "MixedCase", "amount", "paid", "when", "at"]
ROWS = [
    [1, "say \"hi\" 'there' 100%", "a\\b", "Ünïcode", 2**53 + 1, 12.5, True, Date(46336.0, "2026-11-10"), "2026-11-10T04:24:31.123456Z"],
    [2, HOSTILE, "", "x", -7, 0.1, False, Date(46337.5, "2026-11-11 12:00:00"), "2026-11-10T23:59:59.999999+00:00"],
    [3],  # ragged: the API leaves out the trailing empty cells
    [4, "", "", "", 0, 3, None, None, "2026-11-10 00:00:00"],
]


@pytest.fixture
def sheets(sheets_server: SheetsServer, monkeypatch: pytest.MonkeyPatch) -> SheetsServer:
    sheets_server.state.reset()
    monkeypatch.setenv("SHEETS_KEY", json.dumps(sheets_server.key))
    return sheets_server


def source(sheets: SheetsServer, **fields) -> GoogleSheetsSource:
    config = {
        "name": "orders_sheet",
        "kind": "google_sheets",
        "spreadsheet_id": "sheet-1",
        "range": "'Orders 2026'!A1:Z",
        "service_account": "${SHEETS_KEY}",
        "api_url": sheets.url,
        "backoff_seconds": 0.01,
        "start_date": "2026-11-01",
        "target": {"table": "orders"},
    }
    return GoogleSheetsSource.model_validate(config | fields)


def extract(src: GoogleSheetsSource, workdir: Path) -> pl.DataFrame:
    resolver = SecretResolver(secrets_file=str(workdir / "s.toml"))
    run = ExtractRun(window=(dt.datetime(2026, 11, 10, tzinfo=dt.UTC),) * 2, partition_key=DAY, secrets=resolver, lake=None, log=LOG)
    frames = list(extract_day(src, run))
    assert frames and all(frame.height <= src.batch_size for frame in frames)
    return pl.concat(frames)


def test_cells_keep_their_values_and_types(sheets, workdir):
    sheets.add("sheet-1", {"Orders 2026": [HEADER, *ROWS]})

    frame = extract(source(sheets, batch_size=3), workdir)

    assert frame.columns == [*HEADER, "_record"]
    assert dict(frame.schema) | {"_record": pl.String} == {
        "id": pl.Int64, HOSTILE: pl.String, HEADER[2]: pl.String, HEADER[3]: pl.String, "MixedCase": pl.Int64,
        "amount": pl.Float64, "paid": pl.Boolean, "when": pl.String, "at": pl.String, "_record": pl.String,
    }  # fmt: skip
    expected = [[None if isinstance(c, str) and c == "" else (c.text if isinstance(c, Date) else c) for c in row] for row in ROWS]
    expected = [row + [None] * (len(HEADER) - len(row)) for row in expected]
    assert frame.drop("_record").rows() == [tuple(row) for row in expected]
    assert frame["MixedCase"][0] == 2**53 + 1  # as sent; Sheets itself keeps numbers as doubles (see the README)
    assert json.loads(frame["_record"][0])[HOSTILE] == ROWS[0][1]


def test_a_column_of_numbers_and_text_is_text_spelled_exactly(sheets, workdir):
    sheets.add("sheet-1", {"Orders 2026": [["code", "ratio", "flag"], [7, 1, True], ["A-1", 0.1, 3], [2**53 + 1, 2**53 + 1, None], [1e21, 0.5, None]]})

    frame = extract(source(sheets), workdir)

    assert frame["code"].to_list() == ["7", "A-1", "9007199254740993", "1e+21"]
    # 2**53 + 1 is no double: rather than round it, the column stays text.
    assert frame["ratio"].to_list() == ["1", "0.1", "9007199254740993", "0.5"]
    assert frame["flag"].to_list() == ["TRUE", "3", None, None]


def test_blank_rows_are_skipped_and_blank_cells_are_null(sheets, workdir):
    sheets.add("sheet-1", {"Orders 2026": [["id", "name"], [1, "a"], [], [None, None], [None, "b"], [2]]})

    assert extract(source(sheets), workdir).drop("_record").rows() == [(1, "a"), (None, "b"), (2, None)]


def test_header_row_and_a_range_not_at_a1(sheets, workdir):
    grid = [["title of the report"], [None, None], [None, "id", "name"], [None, 1, "a"], [None, 2, "b"]]
    sheets.add("sheet-1", {"Orders 2026": grid})

    frame = extract(source(sheets, range="'Orders 2026'!B2:C", header_row=2), workdir)

    assert frame.drop("_record").rows() == [(1, "a"), (2, "b")] and frame.columns[:2] == ["id", "name"]


def test_formatted_values_and_serial_dates(sheets, workdir):
    sheets.add("sheet-1", {"Orders 2026": [["id", "day", "paid"], [1, Date(46336.25, "2026-11-10 06:00"), True]]})

    assert extract(source(sheets, value_render="FORMATTED_VALUE"), workdir).drop("_record").rows() == [("1", "2026-11-10 06:00", "TRUE")]
    assert extract(source(sheets, date_time_render="SERIAL_NUMBER"), workdir).drop("_record").rows() == [(1, 46336.25, True)]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["id", "name", "id"], "header 'Orders 2026'!C1 is 'id', like 'Orders 2026'!A1 too"),
        (["id", None, "name"], "cell 'Orders 2026'!B2 holds a value but its column has no name in the header row ('Orders 2026'!B1 is empty)"),
        (["id", "_record"], "header 'Orders 2026'!B1 is '_record', like the column the platform keeps each original row in"),
    ],
)
def test_a_header_that_does_not_name_each_column_once_is_refused(sheets, workdir, header, message):
    sheets.add("sheet-1", {"Orders 2026": [header, [1, 2, 3]]})

    with pytest.raises(GoogleSheetsError) as raised:
        extract(source(sheets), workdir)
    assert str(raised.value).startswith("source 'orders_sheet', field 'header_row': ") and message in str(raised.value)


def test_an_empty_column_without_a_name_is_left_out(sheets, workdir):
    sheets.add("sheet-1", {"Orders 2026": [["id", "", "name"], [1, "", "a"]]})

    assert extract(source(sheets), workdir).columns == ["id", "name", "_record"]


def test_a_sheet_with_only_its_header_is_an_empty_frame_with_its_columns(sheets, workdir):
    sheets.add("sheet-1", {"Orders 2026": [["id", "name"]]})

    frame = extract(source(sheets), workdir)

    assert frame.height == 0 and frame.columns == ["id", "name", "_record"]


def test_a_range_without_its_header_row_fails_naming_header_row(sheets, workdir):
    sheets.add("sheet-1", {"Orders 2026": [[None]]})

    with pytest.raises(GoogleSheetsError, match=r"field 'header_row': the range holds 0 row\(s\), so header_row 1 \('Orders 2026'!A1\) is empty"):
        extract(source(sheets), workdir)


def test_a_key_file_path_in_the_secret_works(sheets, workdir, monkeypatch):
    sheets.add("sheet-1", {"Orders 2026": [["id"], [1]]})
    (workdir / "key.json").write_text(json.dumps(sheets.key))
    monkeypatch.setenv("SHEETS_KEY", str(workdir / "key.json"))

    assert extract(source(sheets), workdir)["id"].to_list() == [1]


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("{not json", "is not JSON (line 1, column 2)"),
        ("/nowhere/key.json", "is neither a JSON key"),
        (json.dumps({"type": "authorized_user", "client_id": "x"}), "is not a service account key (its type is 'authorized_user')"),
        (json.dumps({"type": "service_account", "client_email": "a@b", "token_uri": "http://x"}), "lacks private_key"),
        (json.dumps({"type": "service_account", "client_email": "a@b", "token_uri": "http://x", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA"}),
         "holds a private_key that cannot be read"),
    ],
)  # fmt: skip
def test_a_bad_key_names_the_field_and_the_fix(sheets, workdir, monkeypatch, key, problem):
    monkeypatch.setenv("SHEETS_KEY", key)

    with pytest.raises(GoogleSheetsError) as raised:
        extract(source(sheets), workdir)
    message = str(raised.value)
    assert message.startswith("source 'orders_sheet', field 'service_account': secret 'SHEETS_KEY' ") and problem in message
    assert "fix: store the whole JSON key file" in message
    assert sheets.state.requests == []


def test_a_key_google_does_not_know_is_refused_at_the_token_endpoint(sheets, workdir, monkeypatch):
    other, _ = service_account_key(sheets.key["token_uri"], email=sheets.key["client_email"])
    monkeypatch.setenv("SHEETS_KEY", json.dumps(other | {"private_key_id": sheets.key["private_key_id"]}))

    refused = r"field 'service_account': the token endpoint .*/token refused the key of etl-reader@.*invalid_grant: Invalid JWT Signature"
    with pytest.raises(GoogleSheetsError, match=refused):
        extract(source(sheets), workdir)


def test_a_sheet_not_shared_with_the_account_says_to_share_it(sheets, workdir):
    sheets.add("sheet-1", {"Orders 2026": [["id"]]}, shared=False)

    with pytest.raises(GoogleSheetsError) as raised:
        extract(source(sheets), workdir)
    message = str(raised.value)
    assert "field 'service_account': etl-reader@etl-tests.iam.gserviceaccount.com may not read spreadsheet 'sheet-1'" in message
    assert "PERMISSION_DENIED: The caller does not have permission" in message
    assert "share the spreadsheet with etl-reader@etl-tests.iam.gserviceaccount.com as a Viewer" in message


def test_an_unknown_spreadsheet_names_spreadsheet_id(sheets, workdir):
    with pytest.raises(GoogleSheetsError, match=r"field 'spreadsheet_id': spreadsheet 'sheet-1' not found .*NOT_FOUND: Requested entity was not found"):
        extract(source(sheets), workdir)


def test_a_range_that_does_not_parse_names_range_and_lists_the_sheets(sheets, workdir):
    sheets.add("sheet-1", {"Orders 2026": [["id"]], "Bob's": [["id"]]})

    with pytest.raises(GoogleSheetsError) as raised:
        extract(source(sheets, range="Orders 2025!A1:Z"), workdir)
    message = str(raised.value)
    assert "field 'range': spreadsheet 'sheet-1' has no range 'Orders 2025!A1:Z' (INVALID_ARGUMENT: Unable to parse range: Orders 2025!A1:Z)" in message
    assert "its sheets: 'Orders 2026', \"Bob's\"" in message
    assert extract(source(sheets, range="'Bob''s'!A:A"), workdir).columns == ["id", "_record"]


class Forgetful(set):
    """Tokens the server issues and then no longer accepts, as after a key is revoked."""

    def add(self, token: str) -> None:
        pass


def test_a_token_the_api_refuses_names_the_credential(sheets, workdir, monkeypatch):
    sheets.add("sheet-1", {"Orders 2026": [["id"]]})
    monkeypatch.setattr(sheets.state, "tokens", Forgetful())

    with pytest.raises(GoogleSheetsError, match=r"field 'service_account': the Sheets API refused the token of etl-reader@.*UNAUTHENTICATED"):
        extract(source(sheets), workdir)


def test_unavailable_is_retried_within_max_attempts(sheets, workdir):
    sheets.add("sheet-1", {"Orders 2026": [["id"], [1]]})
    sheets.state.faults.extend([503, 503])

    assert extract(source(sheets, max_attempts=3), workdir)["id"].to_list() == [1]

    sheets.state.faults.extend([503] * 3)
    with pytest.raises(GoogleSheetsError, match=r"gave up after 3 attempt\(s\); last error: HTTP 503 UNAVAILABLE"):
        extract(source(sheets, max_attempts=3), workdir)


def test_an_unreachable_api_fails_fast_naming_api_url(sheets, workdir):
    sheets.add("sheet-1", {"Orders 2026": [["id"]]})
    closed = SheetsServer()
    closed.close()

    gave_up = r"field 'api_url': GET http://127.0.0.1:\d+/v4/spreadsheets/sheet-1/values/.* gave up after 2 attempt\(s\); last error: ConnectError"
    with pytest.raises(GoogleSheetsError, match=gave_up):
        extract(source(sheets, api_url=closed.url, max_attempts=2, timeout_seconds=2), workdir)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"service_account": json.dumps({"type": "service_account"})}, "must be a `${NAME}` secret reference"),
        ({"range": "'Bob's'!A1:Z"}, "a quote inside it is doubled"),
        ({"range": "'Orders 2026!A1:Z"}, "a quoted sheet name ends with a single quote"),
        ({"spreadsheet_id": "https://docs.google.com/spreadsheets/d/abc/edit"}, "spreadsheet_id"),
        ({"api_url": "sheets.googleapis.com"}, "is not an http(s) URL"),
    ],
)
def test_config_errors_fail_at_validation(sheets, fields, problem):
    with pytest.raises(ValidationError) as raised:
        source(sheets, **fields)
    assert problem in str(raised.value)


def test_a_sheets_source_is_a_row_of_the_excel_job_list_and_back(tmp_path):
    (tmp_path / "sources.yaml").write_text(
        """
sources:
  - name: targets_orders
    kind: google_sheets
    spreadsheet_id: 1AbC-d_9
    range: "'Bob''s orders'!A1:Z"
    service_account: ${targets-service-account}
    start_date: 2026-11-01
    target: {schema: sales, table: orders}
"""
    )
    original = load_sources(tmp_path / "sources.yaml", None)

    write_workbook(tmp_path / "jobs.xlsx", [row_of(source) for source in original.sources])

    assert load_sources(tmp_path / "jobs.xlsx", None) == original
    assert original.sources[0].range == "'Bob''s orders'!A1:Z"


def sheets_yaml(sheets: SheetsServer, contract: str, checks: str = "") -> str:
    return f"""
sources:
  - name: orders_sheet
    kind: google_sheets
    spreadsheet_id: sheet-1
    range: "'Orders 2026'!A1:Z"
    service_account: ${{orders_sheet-key}}
    api_url: {sheets.url}
    start_date: 2026-11-01
    target: {{table: orders}}
{contract}{checks}"""


CONTRACT = f"""    contract:
      keys: [id]
      extra_columns: keep
      columns:
        id: {{type: int, required: true}}
        "{HOSTILE}": {{type: string, trim: false}}
        amount: {{type: float}}
        MixedCase: {{type: int}}
        when: {{type: date, format: "%Y-%m-%d"}}
        at: {{type: timestamp}}
"""


def key_in_secrets_file(platform, sheets: SheetsServer) -> None:
    """The key as a user keeps it locally: in the secrets file, found by the resolver."""
    (platform.workdir / ".etl").mkdir()
    (platform.workdir / ".etl/secrets.toml").write_text(f"'orders_sheet-key' = '''{json.dumps(sheets.key)}'''\n")


def test_a_day_through_the_platform_lands_cell_by_cell_and_every_day_is_a_snapshot(platform, sheets):
    key_in_secrets_file(platform, sheets)
    rows = [[1, HOSTILE, "q \"x\" 'y' 100% \\ back", 2**53 + 1, 12.5, "2026-11-10", "2026-11-10T04:24:31.123456Z"], [2, " padded ", None, -3, 0.1], [3]]
    sheets.add("sheet-1", {"Orders 2026": [["id", HOSTILE, "100% \"q\" 'x'", "MixedCase", "amount", "when", "at"], *rows]})
    defs = platform.configure(sheets_yaml(sheets, CONTRACT))

    result = platform.materialize(defs, DAY, NEXT_DAY)

    assert result.success
    verdicts = {(e.check_name, e.partition): e.passed for e in result.get_asset_check_evaluations()}
    assert verdicts[("reject_rate", DAY)] and verdicts[("reject_rate", NEXT_DAY)]
    lake = platform.lake(defs)
    for day in (DAY, NEXT_DAY):
        frame = scan_partition(lake, "raw/orders_sheet", day).collect().sort("id")
        assert frame["id"].to_list() == [1, 2, 3]
        assert frame[HOSTILE].to_list() == [HOSTILE, " padded ", None]
        assert frame["100% \"q\" 'x'"].to_list() == [rows[0][2], None, None]
        assert frame["MixedCase"].to_list() == [2**53 + 1, -3, None] and frame.schema["MixedCase"] == pl.Int64
        assert frame["amount"].to_list() == [12.5, 0.1, None]
        assert frame["when"].to_list() == [dt.date(2026, 11, 10), None, None]
        assert frame["at"].to_list() == [dt.datetime(2026, 11, 10, 4, 24, 31, 123456, tzinfo=dt.UTC), None, None]
    loaded = platform.query(defs, f'SELECT id, "{HOSTILE}", "100% ""q"" \'x\'", "MixedCase", amount FROM orders WHERE _partition = :day ORDER BY id', day=DAY)
    assert loaded == [(1, HOSTILE, rows[0][2], 2**53 + 1, 12.5), (2, " padded ", None, -3, 0.1), (3, None, None, None, None)]
    assert platform.query(defs, "SELECT COUNT(*) FROM orders") == [(6,)]


def test_bad_rows_become_rejects_and_a_high_rate_fails_the_day(platform, sheets):
    key_in_secrets_file(platform, sheets)
    sheets.add("sheet-1", {"Orders 2026": [["id", "amount"], [1, 2.5], ["two", 3], [3, "n/a"], [4, 1]]})
    defs = platform.configure(sheets_yaml(sheets, "    contract:\n      columns:\n        id: {type: int, required: true}\n        amount: {type: float}\n"))

    result = platform.materialize(defs, DAY, raise_on_error=False)

    assert not result.success
    verdict = next(e for e in result.get_asset_check_evaluations() if e.check_name == "reject_rate")
    assert not verdict.passed and verdict.partition == DAY and verdict.metadata["rows_rejected"].value == 2
    rejects = scan_partition(platform.lake(defs), "rejects/orders_sheet", DAY).collect()
    assert sorted((json.loads(record) for record in rejects["record"]), key=str) == [{"id": "two", "amount": 3}, {"id": 3, "amount": "n/a"}]
    assert platform.materialized_partitions(["warehouse", "orders"]) == set()


def test_a_sheet_with_only_its_header_is_an_empty_day(platform, sheets):
    sheets.add("sheet-1", {"Orders 2026": [["id", "name"]]})
    key_in_secrets_file(platform, sheets)
    contract = "    contract:\n      columns:\n        id: {type: int, required: true}\n        name: {type: string}\n"
    defs = platform.configure(sheets_yaml(sheets, contract, "    checks: {min_rows: 0}\n"))

    assert platform.materialize(defs, DAY).success
    assert platform.manifest(defs, "raw/orders_sheet", DAY)["rows"] == 0
    assert platform.query(defs, "SELECT COUNT(*) FROM orders") == [(0,)]


LIVE = bool(os.environ.get(KEY_FILE_VARIABLE) and os.environ.get(SHEET_VARIABLE))


@pytest.mark.skipif(not LIVE, reason=f"set {KEY_FILE_VARIABLE} and {SHEET_VARIABLE} (and optionally {RANGE_VARIABLE}) to read a real spreadsheet")
def test_live_google_sheets_api(workdir, monkeypatch):
    """Reads the real API: the key file's account must be a Viewer of the sheet, whose range has a header row."""
    name = f"LIVE_SHEETS_KEY_{uuid.uuid4().hex[:6].upper()}"
    monkeypatch.setenv(name, os.environ[KEY_FILE_VARIABLE])
    src = GoogleSheetsSource.model_validate(
        {
            "name": "live_sheet",
            "kind": "google_sheets",
            "spreadsheet_id": os.environ[SHEET_VARIABLE],
            "range": os.environ.get(RANGE_VARIABLE, "A1:ZZ"),
            "service_account": f"${{{name}}}",
            "start_date": "2026-11-01",
            "target": {"table": "live_sheet"},
        }
    )

    frame = extract(src, workdir)

    assert frame.columns[-1] == "_record" and len(frame.columns) > 1
    assert all(set(json.loads(record)) == set(frame.columns[:-1]) for record in frame["_record"])
