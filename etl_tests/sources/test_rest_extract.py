"""The REST connector against a real HTTP server on 127.0.0.1: pagination, auth, retries, records."""

import datetime as dt
import logging
import time

import polars as pl
import pytest

from etl_resources.lake.day_schema import LakeSchemaError
from etl_resources.lake.store import open_lake, read_manifest, write_partition
from etl_resources.secrets import SecretStore
from etl_resources.sources.rest.extract import RestSourceError, extract_rest
from etl_resources.sources.rest.model import RestSource
from etl_tests.support.api_server import ApiServer, ApiState

WINDOW = (dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
LOG = logging.getLogger("test")
AUTH = {
    "api_key_header": {"type": "api_key", "name": "X-API-KEY", "value": "${API_SECRET}"},
    "api_key_query": {"type": "api_key", "name": "api_key", "in": "query", "value": "${API_SECRET}"},
    "bearer": {"type": "bearer", "token": "${API_SECRET}"},
    "basic": {"type": "basic", "username": "etl", "password": "${API_SECRET}"},
    "oauth2": {"type": "oauth2_client_credentials", "token_url": "/oauth/token", "client_id": "etl", "client_secret": "${API_SECRET}"},
}
PAGINATION = {
    "/page": {"type": "page", "page_size": 10},
    "/offset": {"type": "offset", "page_size": 10},
    "/cursor": {"type": "cursor", "cursor_path": "next"},
    "/cursor ": {"type": "cursor", "cursor_header": "X-Next-Cursor"},
    "/next": {"type": "next_url", "next_url_path": "links.next"},
    "/link": {"type": "link_header"},
}


@pytest.fixture(autouse=True)
def api_secret(monkeypatch):
    monkeypatch.setenv("API_SECRET", "s3cret")


def source(api, path: str = "/page", **fields) -> RestSource:
    config = {
        "name": "things",
        "kind": "rest",
        "base_url": api.url,
        "path": path.strip(),
        "auth": AUTH["api_key_header"],
        "pagination": PAGINATION.get(path, {"type": "page", "page_size": 10}),
        "start_date": "2026-11-01",
        "target": {"table": "things"},
        "retry": {"backoff_seconds": 0.05, "max_backoff_seconds": 0.2},
    }
    return RestSource.model_validate(config | fields)


def ids(src: RestSource, workdir) -> list[int]:
    frames = list(extract_rest(src, SecretStore(workdir / "secrets.toml"), WINDOW, LOG))
    return pl.concat(frames, how="diagonal_relaxed")["id"].to_list()


@pytest.mark.parametrize("path", sorted(PAGINATION))
def test_every_pagination_style_reads_every_record_once(api, workdir, path):
    assert ids(source(api, path), workdir) == list(range(1, 26))


@pytest.mark.parametrize("total", [20, 30])
def test_a_total_count_stops_paging(api, workdir, total):
    api.state.record_count = total
    src = source(api, pagination={"type": "page", "page_size": 10, "total_path": "total"})

    assert ids(src, workdir) == list(range(1, total + 1))
    assert len(api.state.requests) == total // 10  # no extra request for an empty page


@pytest.mark.parametrize("style", sorted(AUTH))
def test_every_auth_style_is_accepted(api, workdir, style):
    api.state.auth = style
    assert ids(source(api, auth=AUTH[style]), workdir) == list(range(1, 26))


@pytest.mark.parametrize("style", sorted(AUTH))
def test_wrong_credentials_fail_fast_without_retries(api, workdir, style, monkeypatch):
    api.state.auth = style
    monkeypatch.setenv("API_SECRET", "wrong")

    with pytest.raises(RestSourceError) as raised:
        ids(source(api, auth=AUTH[style]), workdir)

    message = str(raised.value)
    assert "401" in message and ("check the credentials" in message or "token endpoint" in message)
    assert "wrong" not in message
    assert len(api.state.requests) <= 1


def test_an_expired_oauth2_token_is_fetched_again(api, workdir):
    api.state.auth = "oauth2"
    api.state.token_lifetime = 30  # renewed 30 s early, so every page needs a new token

    assert ids(source(api, auth=AUTH["oauth2"]), workdir) == list(range(1, 26))
    assert api.state.tokens_issued == 3


def test_429_and_500s_are_retried_honouring_retry_after(api, workdir):
    api.state.faults.extend([429, 500, 503])
    api.state.retry_after = "1"
    started = time.monotonic()

    assert ids(source(api), workdir) == list(range(1, 26))
    assert time.monotonic() - started >= 3  # each fault's Retry-After: 1 was waited out
    assert len(api.state.requests) == 3 + 3


def test_a_timeout_is_retried(api, workdir):
    api.state.slow_seconds, api.state.slow_requests = 1.0, 1
    src = source(api, retry={"timeout_seconds": 0.3, "backoff_seconds": 0.05})

    assert ids(src, workdir) == list(range(1, 26))
    assert len(api.state.requests) == 4


def test_the_retry_budget_is_bounded(api, workdir):
    api.state.faults.extend([500] * 10)

    with pytest.raises(RestSourceError, match=r"source 'things': http://127.0.0.1:\d+/page\?page=1&page_size=10: gave up after 3 attempt\(s\)"):
        ids(source(api, retry={"max_attempts": 3, "backoff_seconds": 0.05}), workdir)
    assert len(api.state.requests) == 3


def test_a_body_that_is_not_json_is_a_clear_error(api, workdir):
    api.state.malformed = True

    with pytest.raises(RestSourceError, match=r"source 'things': http://127.0.0.1:\d+/page\?page=1&page_size=10: the response is not JSON"):
        ids(source(api), workdir)


def test_records_not_found_name_the_field(api, workdir):
    with pytest.raises(RestSourceError, match="field 'records_path': no list of records at `data.rows`"):
        ids(source(api, records_path="data.rows"), workdir)


def test_nested_objects_as_json_or_flattened(api, workdir):
    as_json = pl.concat(extract_rest(source(api), SecretStore(workdir / "s.toml"), WINDOW, LOG))
    flat = pl.concat(extract_rest(source(api, nested="flatten"), SecretStore(workdir / "s.toml"), WINDOW, LOG))

    assert as_json["device"][0] == '{"os": "ios", "tags": ["a", "b"]}'
    assert flat["device_os"][0] == "ios" and flat["device_tags"][0] == '["a", "b"]'
    assert "_record" in as_json.columns  # kept for the rejects until the contract step drops it


@pytest.fixture
def elsewhere():
    """A second server on another port: another origin, which must never see the source's credentials."""
    server = ApiServer(ApiState(auth="none"))
    yield server
    server.close()


def credentials_seen(server: ApiServer) -> list[str]:
    """Every header value and request path that carried the secret or an Authorization header."""
    sent = [value for headers in server.state.headers for name, value in headers.items() if "s3cret" in value or name.lower() == "authorization"]
    return sent + [path for path in server.state.requests if "s3cret" in path]


@pytest.mark.parametrize("style", sorted(AUTH))
def test_a_redirect_to_another_origin_is_refused(api, elsewhere, workdir, style):
    api.state.auth, api.state.redirect_to = style, elsewhere.url

    with pytest.raises(RestSourceError) as raised:
        ids(source(api, auth=AUTH[style]), workdir)

    message = str(raised.value)
    assert f"source 'things': {api.url}/page" in message and f"redirects to another origin, {elsewhere.url}" in message
    assert "follow_redirects: any" in message and "s3cret" not in message
    assert elsewhere.state.requests == []


@pytest.mark.parametrize("style", sorted(AUTH))
def test_an_allowed_cross_origin_redirect_gets_no_credentials(api, elsewhere, workdir, style):
    api.state.auth, api.state.redirect_to = style, elsewhere.url

    assert ids(source(api, auth=AUTH[style], follow_redirects="any"), workdir) == list(range(1, 26))
    assert len(elsewhere.state.requests) == 3
    assert credentials_seen(elsewhere) == []


@pytest.mark.parametrize("path", ["/next", "/link"])
def test_a_next_page_url_on_another_origin_is_refused(api, elsewhere, workdir, path):
    api.state.auth, api.state.next_origin = "api_key_query", elsewhere.url

    with pytest.raises(RestSourceError) as raised:
        ids(source(api, path, auth=AUTH["api_key_query"]), workdir)

    message = str(raised.value)
    assert message.startswith(f"source 'things': {elsewhere.url}{path}?") and "is on another origin than `base_url`" in message
    assert "s3cret" not in message and elsewhere.state.requests == []
    assert ids(source(api, path, auth=AUTH["api_key_query"], follow_redirects="any"), workdir) == list(range(1, 26))
    assert credentials_seen(elsewhere) == []


@pytest.mark.parametrize("style", ["api_key_header", "api_key_query", "oauth2"])
def test_a_same_origin_redirect_is_followed_with_credentials(api, workdir, style):
    api.state.auth = style
    src = source(api, "/moved", auth=AUTH[style], pagination={"type": "page", "page_size": 10})

    assert ids(src, workdir) == list(range(1, 26))
    assert sum(path.startswith("/moved") for path in api.state.requests) == 3


def test_a_redirect_loop_names_the_source_and_the_url_without_the_key(api, workdir):
    api.state.auth = "api_key_query"

    with pytest.raises(RestSourceError) as raised:
        ids(source(api, "/loop", auth=AUTH["api_key_query"]), workdir)

    message = str(raised.value)
    assert f"source 'things': {api.url}/loop?" in message and "api_key=***" in message
    assert "more than 10 redirects" in message and "s3cret" not in message


@pytest.mark.parametrize(
    ("path", "repeated"),
    [
        ("/page", "the same records as page 1"),
        ("/offset", "the same records as page 1"),
        ("/cursor", "cursor '10' again"),
        ("/cursor ", "cursor '10' again"),
        ("/next", "next URL again"),
    ],
)
def test_a_pagination_that_goes_round_in_circles_stops_with_an_error(api, workdir, path, repeated):
    api.state.stuck = True

    with pytest.raises(RestSourceError) as raised:
        ids(source(api, path), workdir)

    message = str(raised.value)
    assert message.startswith(f"source 'things': {api.url}{path.strip()}") and repeated in message
    assert len(api.state.requests) <= 3


def test_max_pages_bounds_a_day(api, workdir):
    api.state.record_count = 1000

    with pytest.raises(RestSourceError, match=r"source 'things': .*/page\?.*more than pagination.max_pages=4 pages"):
        ids(source(api, pagination={"type": "page", "page_size": 10, "max_pages": 4}), workdir)
    assert len(api.state.requests) == 4


def test_max_total_seconds_bounds_a_slow_body(api, workdir):
    api.state.drip_seconds = 0.2  # a page of 10 records takes about 2 minutes this way
    started = time.monotonic()

    with pytest.raises(RestSourceError, match=r"source 'things': .*/page\?.*ran past retry.max_total_seconds=1.5"):
        ids(source(api, retry={"max_total_seconds": 1.5, "timeout_seconds": 5}), workdir)
    assert time.monotonic() - started < 3


def test_a_failed_extract_leaves_no_staged_parts(api, workdir):
    api.state.stuck = True
    lake = open_lake(str(workdir / "lake"))
    frames = extract_rest(source(api), SecretStore(workdir / "secrets.toml"), WINDOW, LOG)

    with pytest.raises(RestSourceError, match="the same records as page 1"):
        write_partition(lake, "raw/things", "2026-11-01", frames)
    assert [p for p in (workdir / "lake").rglob("*") if p.is_file()] == []


def test_a_field_whose_type_changes_between_pages_fails_the_day(api, workdir):
    api.state.string_ids_after = 10
    lake = open_lake(str(workdir / "lake"))
    frames = extract_rest(source(api), SecretStore(workdir / "secrets.toml"), WINDOW, LOG)

    with pytest.raises(LakeSchemaError) as raised:
        write_partition(lake, "raw/things", "2026-11-01", frames)

    message = str(raised.value)
    assert "raw/things 2026-11-01: column 'id' is int64 in batch 1 and string in batch 2" in message
    assert "declare its type in the source's contract" in message
    assert read_manifest(lake, "raw/things", "2026-11-01") is None


def things_yaml(api, contract: str = "") -> str:
    return f"""
sources:
  - name: things
    kind: rest
    base_url: {api.url}
    path: /page
    auth: {{type: api_key, name: X-API-KEY, value: "${{API_SECRET}}"}}
    pagination: {{type: page, page_size: 10}}
    start_date: 2026-11-01
    target: {{table: things}}
{contract}"""


def test_a_type_change_between_pages_fails_the_run_and_a_contract_fixes_it(platform, api):
    """The whole step, as a user runs it: the day fails with the column named, nothing reaches the lake or the
    warehouse; with the column's type declared, every page lands as one schema."""
    api.state.string_ids_after = 10
    defs = platform.configure(things_yaml(api))

    failed = platform.materialize(defs, "2026-11-01", raise_on_error=False)

    assert not failed.success
    audit = platform.query(defs, "SELECT step, status, error_message FROM etl_audit_log")
    assert [(step, status) for step, status, _ in audit] == [("extract", "failure")]
    assert "raw/things 2026-11-01: column 'id' is int64 in batch 1 and string in batch 2" in audit[0][2]
    assert platform.manifest(defs, "raw/things", "2026-11-01") is None

    contract = "    contract:\n      columns:\n        id: {type: string, required: true}\n"
    defs = platform.configure(things_yaml(api, contract))
    assert platform.materialize(defs, "2026-11-01").success
    assert platform.manifest(defs, "raw/things", "2026-11-01")["schema"]["id"] == "string"
    assert sorted(int(row[0]) for row in platform.query(defs, "SELECT id FROM things")) == list(range(1, 26))
