"""File drops over every protocol: the same files, with hostile names and a bad row each, land in the same
rows and rejects from a local folder, SFTP (password and key), FTP, WebDAV and an HTTP directory listing;
the landing sensor sees new and re-dropped files on each; and a wrong password, a missing folder, a file
deleted between listing and reading and an unreachable host fail with a message that says what to fix.

Every server is real and listens on 127.0.0.1 (etl_tests/support/file_servers.py). Not covered here, as no
server for them runs in the tests: FTPS, WebDAV over TLS and HTTPS (pyftpdlib needs pyOpenSSL for TLS)."""

import io
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from etl_resources.lake.store import scan_partition
from etl_resources.secrets import SecretResolver
from etl_resources.sources.files.extract import read_day
from etl_resources.sources.files.landing import LandingError, open_landing
from etl_resources.sources.files.model import FileSource
from etl_tests.support.file_servers import PASSWORD, USER
from etl_tests.support.servers import free_port

DAY = "2026-11-20"
CSV_NAME = f'orders "big" 50% é_{DAY}.csv'
JSONL_NAME = f"orders {DAY} ünïcode 'q'.jsonl"
PARQUET_NAME = f"orders_{DAY} 100%.parquet"
CSV = 'order_id,customer,amount,note\n1,"Müller, Anna",10.50,"said ""hi"""\n2,Zoë,3.00,50% off\n3,broken,row\n4,李雷,0.01,\n'
JSONL = (
    '{"order_id": 5, "customer": "O\'Brien", "amount": 7.25, "note": "tab\\tand \\"quote\\""}\n'
    '{"order_id": 6, "customer": "half", "amount": \n'
    '{"order_id": 7, "customer": "🚀 rocket", "amount": 1, "note": null}\n'
)
PARQUET = pl.DataFrame({"order_id": [8, 9], "customer": ["naïve", "100% 'x'"], "amount": ["2.50", "0.00"], "note": ['a "b"', None]})
EXPECTED = [
    (1, "Müller, Anna", "10.50", 'said "hi"'),
    (2, "Zoë", "3.00", "50% off"),
    (4, "李雷", "0.01", ""),  # an empty CSV field is empty text, not null
    (5, "O'Brien", "7.25", 'tab\tand "quote"'),
    (7, "🚀 rocket", "1.00", None),
    (8, "naïve", "2.50", 'a "b"'),
    (9, "100% 'x'", "0.00", None),
]
PROTOCOLS = ["local", "sftp_password", "sftp_key", "ftp", "webdav", "http"]
REMOTE = PROTOCOLS[1:]


@dataclass(frozen=True)
class Drop:
    """Where a test drops files on disk, and the landing URL and connection under which a source reads them."""

    folder: Path
    landing: str
    connection: dict | None


@pytest.fixture
def drop(request, drop_root: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Drop:
    protocol = request.param
    name = f"landing-{uuid.uuid4().hex[:8]}"
    if protocol == "local":
        (workdir / name).mkdir()
        return Drop(workdir / name, str(workdir / name), None)
    server = request.getfixturevalue(protocol.split("_")[0] if protocol != "http" else "http_listing")
    (drop_root / name).mkdir()
    monkeypatch.setenv("DROP_PASSWORD", PASSWORD)
    connection = {"username": USER, "password": "${drop_password}", "timeout_seconds": 5}
    if protocol.startswith("sftp"):
        connection["known_hosts"] = str(server.known_hosts)
    if protocol == "sftp_key":
        monkeypatch.setenv("DROP_KEY", server.client_key.read_text())
        connection = {"username": USER, "private_key": "${drop_key}", "known_hosts": str(server.known_hosts)}
    return Drop(drop_root / name, server.url(name), connection)


def sources_yaml(landing: str, connection: dict | None) -> str:
    source = {
        "name": "drops",
        "kind": "files",
        "landing": landing,
        "pattern": "orders*",
        "start_date": "2026-11-01",
        "target": {"table": "drops"},
        "step_retries": {"max_retries": 0},
        "checks": {"reject_rate_max": 0.5, "schema_change": False},
        "contract": {
            "columns": {
                "order_id": {"type": "int", "required": True},
                "customer": {"type": "string"},
                "amount": {"type": "decimal(10,2)"},
                "note": {"type": "string"},
            },
            "keys": ["order_id"],
        },
    }
    if connection:
        source["landing_connection"] = connection
    return yaml.safe_dump({"sources": [source]}, allow_unicode=True)


def drop_files(folder: Path) -> None:
    (folder / CSV_NAME).write_text(CSV, encoding="utf-8")
    (folder / JSONL_NAME).write_text(JSONL, encoding="utf-8")
    buffer = io.BytesIO()
    PARQUET.write_parquet(buffer)
    (folder / PARQUET_NAME).write_bytes(buffer.getvalue())


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources) as context:
        result = defs.resolve_sensor_def("drops_landing").evaluate_tick(context)
    return list(result.run_requests or []), result.cursor


def step_error(result) -> str:
    return next(event for event in result.all_events if event.is_step_failure).step_failure_data.error.to_string()


def warehouse_rows(platform, defs) -> list[tuple]:
    rows = platform.query(defs, "SELECT order_id, customer, amount, note FROM drops ORDER BY order_id")
    return [(order_id, customer, f"{float(amount):.2f}", note) for order_id, customer, amount, note in rows]


@pytest.mark.parametrize("drop", PROTOCOLS, indirect=True)
def test_a_day_of_hostile_files_lands_cell_by_cell(platform, drop: Drop):
    drop_files(drop.folder)
    defs = platform.configure(sources_yaml(drop.landing, drop.connection))

    result = platform.materialize(defs, DAY)

    assert result.success
    assert warehouse_rows(platform, defs) == EXPECTED
    lake = platform.lake(defs)
    raw = scan_partition(lake, "raw/drops", DAY).sort("order_id").collect()
    assert raw.select("order_id", "customer", "note").rows() == [(row[0], row[1], row[3]) for row in EXPECTED]
    rejects = scan_partition(lake, "rejects/drops", DAY).collect()
    assert sorted(rejects["record"].to_list()) == sorted([CSV.splitlines()[3], JSONL.splitlines()[1]])
    reasons = sorted(errors[0]["reason"] for errors in rejects["errors"].to_list())
    assert reasons == [f"csv: {CSV_NAME} line 4 has 3 fields, the header 4", f"jsonl: {JSONL_NAME} line 2 is not JSON: Expecting value"]


@pytest.mark.parametrize("drop", PROTOCOLS, indirect=True)
def test_the_sensor_sees_new_and_redropped_files(platform, drop: Drop):
    defs = platform.configure(sources_yaml(drop.landing, drop.connection))
    assert tick(defs, platform.instance, None)[0] == []  # an empty folder: nothing to do, no error

    (drop.folder / CSV_NAME).write_text(CSV, encoding="utf-8")
    [request], cursor = tick(defs, platform.instance, None)
    assert (request.partition_key, request.tags["etl/landing_files"]) == (DAY, CSV_NAME)
    assert tick(defs, platform.instance, cursor)[0] == []

    (drop.folder / CSV_NAME).write_text(CSV + "10,late,1.00,\n", encoding="utf-8")
    (drop.folder / JSONL_NAME.replace(DAY, "2026-11-19")).write_text(JSONL, encoding="utf-8")
    requests, cursor = tick(defs, platform.instance, cursor)
    assert [(r.partition_key, r.tags["etl/landing_files"]) for r in requests] == [
        ("2026-11-19", JSONL_NAME.replace(DAY, "2026-11-19")),
        (DAY, CSV_NAME),
    ]
    assert tick(defs, platform.instance, cursor)[0] == []


def assert_fails_to_open(platform, defs, landing: str, what: str, fix: str) -> str:
    """The day's step fails with `what` and `fix` for `landing`, commits nothing, and the sensor's tick fails alike."""
    result = platform.materialize(defs, DAY, raise_on_error=False)
    message = step_error(result)
    assert any(f"source 'drops': cannot {doing} the landing folder {landing}: {what}" in message for doing in ("open", "list"))
    assert fix in message
    assert platform.manifest(defs, "raw/drops", DAY) is None
    with pytest.raises(Exception, match=what) as raised:
        tick(defs, platform.instance, None)
    return message + str(raised.value)


def _wrong_password(drop: Drop, monkeypatch) -> tuple[str, dict | None]:
    monkeypatch.setenv("DROP_PASSWORD", "not-the-password")
    monkeypatch.setenv("DROP_KEY", "")
    known_hosts = {"known_hosts": drop.connection["known_hosts"]} if "known_hosts" in drop.connection else {}
    return drop.landing, {"username": USER, "password": "${drop_password}"} | known_hosts


@pytest.mark.parametrize("drop", REMOTE, indirect=True)
def test_a_wrong_password_fails_the_step_and_the_sensor_tick(platform, drop: Drop, monkeypatch):
    drop_files(drop.folder)
    landing, connection = _wrong_password(drop, monkeypatch)
    defs = platform.configure(sources_yaml(landing, connection))

    fix = "check landing_connection.username and the secrets of landing_connection.password"
    assert "not-the-password" not in assert_fails_to_open(platform, defs, landing, "the server refused the login", fix)


@pytest.mark.parametrize("drop", REMOTE, indirect=True)
def test_a_folder_missing_on_the_server_is_an_error(platform, drop: Drop):
    landing = drop.landing + "-missing"
    defs = platform.configure(sources_yaml(landing, drop.connection))

    result = platform.materialize(defs, DAY, raise_on_error=False)

    assert f"source 'drops': the landing folder {landing} does not exist on the server (fix: correct the path in `landing`" in step_error(result)
    assert platform.manifest(defs, "raw/drops", DAY) is None
    with pytest.raises(Exception, match="does not exist on the server"):
        tick(defs, platform.instance, None)


@pytest.mark.parametrize("drop", ["local"], indirect=True)
def test_a_missing_local_folder_is_an_empty_day_as_before(platform, drop: Drop):
    defs = platform.configure(sources_yaml(drop.landing + "-not-yet", None))

    assert platform.materialize(defs, DAY).success
    assert platform.manifest(defs, "raw/drops", DAY)["rows"] == 0


@pytest.mark.parametrize("drop", PROTOCOLS, indirect=True)
def test_a_file_deleted_between_listing_and_reading_fails_the_day(platform, drop: Drop):
    """Driven through `read_day` itself, the extract's own loop, so the file can go after the listing."""
    drop_files(drop.folder)
    defs = platform.configure(sources_yaml(drop.landing, drop.connection))
    source = FileSource.model_validate(yaml.safe_load(sources_yaml(drop.landing, drop.connection))["sources"][0])
    with dg.build_resources({"lake": defs.resources["lake_io_manager"], "secrets": defs.resources["secrets"]}) as resources:
        secrets: SecretResolver = resources.secrets
        frames = read_day(open_landing(source, secrets, resources.lake), source, DAY)
        next(frames)  # the first file (in name order: the CSV) is being read
        (drop.folder / PARQUET_NAME).unlink()
        with pytest.raises(LandingError) as raised:
            list(frames)
    assert str(raised.value).startswith(f"source 'drops': landing file {PARQUET_NAME!r} in {drop.landing} was listed but is gone (fix: run the day again")


@pytest.mark.parametrize("scheme", ["sftp", "ftp", "webdav", "http"])
def test_an_unreachable_host_fails_with_what_to_check(platform, scheme: str, monkeypatch):
    monkeypatch.setenv("DROP_PASSWORD", PASSWORD)
    landing = f"{scheme}://127.0.0.1:{free_port()}/landing"
    connection = {"username": USER, "password": "${drop_password}", "timeout_seconds": 3} | ({"host_key_check": False} if scheme == "sftp" else {})
    defs = platform.configure(sources_yaml(landing, connection))

    fix = "check the host and port, that the server is up, or raise landing_connection.timeout_seconds"
    assert_fails_to_open(platform, defs, landing, "the host cannot be reached", fix)


@pytest.mark.parametrize(
    ("landing", "connection", "message"),
    [
        ("gopher://host/x", None, "scheme 'gopher' is not supported (fix: a local folder or one of file://, abfs://, abfss://, az://, sftp://, ftp://"),
        (
            "ftp://host/x",
            {"private_key": "${k}"},
            "`landing_connection.private_key` does not apply to ftp:// (fix: remove it; ftp:// takes password, timeout_seconds, username)",
        ),
        ("/srv/landing", {"username": "u"}, "`landing_connection` applies to sftp, ftp(s), webdav(s) and http(s) landings only"),
        ("sftp://u:pw@host/x", None, "holds a user name or password in its address (fix: move them to landing_connection.username"),
        ("sftp://host/x", {"username": "u", "host_key_check": False, "known_hosts": "/k"}, "`landing_connection.host_key_check: false` ignores `known_hosts`"),
        ("webdav://host/x", {"password": "${p}"}, "`landing_connection.password` needs `username`"),
    ],
)
def test_a_landing_that_cannot_work_is_refused_when_definitions_load(platform, landing, connection, message):
    from etl_resources.config.sources_file import SourcesConfigError

    with pytest.raises(SourcesConfigError) as raised:
        platform.configure(sources_yaml(landing, connection))
    assert message in str(raised.value)
    assert "pw@" not in str(raised.value)


@pytest.mark.parametrize("drop", ["sftp_password"], indirect=True)
def test_an_sftp_server_whose_host_key_is_not_known_is_refused(platform, drop: Drop, tmp_path: Path):
    (tmp_path / "known_hosts").write_text("")
    defs = platform.configure(sources_yaml(drop.landing, drop.connection | {"known_hosts": str(tmp_path / "known_hosts")}))

    fix = f"add the server's key to {tmp_path / 'known_hosts'} (ssh-keyscan), after checking its fingerprint"
    assert_fails_to_open(platform, defs, drop.landing, "the server's host key is not in known_hosts", fix)
