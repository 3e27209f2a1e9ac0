"""A bad sources file fails when the definitions load, with one message naming the file, the source and the field."""

import copy
import datetime as dt
import os
import subprocess
import zipfile

import pytest
import sqlalchemy as sa
import yaml

from etl_assets.definitions import build_definitions
from etl_assets.demo.shop import DEMO_SOURCES_FILE
from etl_resources.config.sources_file import SourcesConfigError, load_sources
from etl_resources.secrets import SecretStore
from etl_tests.support.servers import REPO

TODAY = dt.datetime.now(dt.UTC).date()
TOMORROW = TODAY + dt.timedelta(days=1)

GOOD = {
    "sources": [
        {
            "name": "orders",
            "kind": "sql",
            "connection": "sqlite:///shop.db",
            "table": "orders",
            "mode": "incremental",
            "watermark_column": "ordered_at",
            "start_date": "2026-11-01",
            "target": {"schema": "shop", "table": "orders"},
        },
        {
            "name": "customers",
            "kind": "sql",
            "connection": "sqlite:///shop.db",
            "table": "customers",
            "start_date": "2026-11-01",
            "target": {"table": "customers"},
        },
    ]
}


def _without(source: dict, field: str) -> dict:
    source.pop(field)
    return source


BAD = {
    "missing field": (lambda s: _without(s[0], "connection"), ["source 'orders'", "field 'connection'", "Field required", "fix: add the field"]),
    "unknown kind": (lambda s: s[0].update(kind="ftp"), ["source 'orders'", "field 'kind'", "unknown kind 'ftp'", "supported: 'sql', 'rest'"]),
    "duplicate name": (lambda s: s[1].update(name="orders"), ["source 'orders' (sources[1])", "field 'name'", "duplicate of sources[0]"]),
    "bad date": (lambda s: s[0].update(start_date="2026-13-01"), ["source 'orders'", "field 'start_date'", "YYYY-MM-DD"]),
    "unknown secret": (
        lambda s: s[0].update(connection="postgresql+psycopg://etl:${ORDERS_DB_PASSWORD}@db/shop"),
        ["source 'orders'", "field 'connection'", "secret 'ORDERS_DB_PASSWORD' not found", "environment variable ORDERS_DB_PASSWORD", "secrets.toml"],
    ),
    "bad schedule": (
        lambda s: s[0].update(schedule="every night"),
        ["source 'orders'", "field 'schedule'", "'every night' is not a cron expression", "e.g. '15 0 * * *'"],
    ),
    "bad freshness deadline": (
        lambda s: s[0].update(freshness={"deadline": "61 * * * *"}),
        ["source 'orders'", "field 'freshness.deadline'", "not a cron expression"],
    ),
    "bad tag value": (
        lambda s: s[0].update(tags={"domain": "sales team"}),
        ["source 'orders'", "field 'tags.domain'", "'sales team' is not a tag value", "63 letters"],
    ),
    "bad owner": (
        lambda s: s[0].update(owners=["data team"]),
        ["source 'orders'", "field 'owners.0'", "'data team' is not an owner", "team:<name> or an email"],
    ),
    "files without a contract": (
        lambda s: s.__setitem__(0, {"name": "drops", "kind": "files", "landing": "/srv/landing", "start_date": "2026-11-01", "target": {"table": "drops"}}),
        ["source 'drops'", "a files source needs a `contract`"],
    ),
    "files date pattern without its group": (
        lambda s: s.__setitem__(
            0,
            {
                "name": "drops",
                "kind": "files",
                "landing": "/srv/landing",
                "start_date": "2026-11-01",
                "target": {"table": "drops"},
                "date_pattern": r"\d{8}",
                "contract": {"columns": {"id": {"type": "int"}}},
            },
        ),
        ["source 'drops'", "`date_pattern` needs a named group `date`"],
    ),
    "table and query": (lambda s: s[0].update(query="SELECT 1"), ["source 'orders'", "give exactly one of `table` or `query`"]),
    "incremental without watermark": (lambda s: _without(s[0], "watermark_column"), ["source 'orders'", "needs `watermark_column`"]),
    "unsafe target name": (
        lambda s: s[0]["target"].update(table="x; DROP TABLE y"),
        ["source 'orders'", "field 'target.table'", "letters, digits and underscores"],
    ),
    "same target twice": (
        lambda s: s[1]["target"].update(schema="shop", table="orders"),
        ["source 'customers'", "field 'target'", "already the target of sources[0]"],
    ),
    "unknown auth type": (
        lambda s: s.__setitem__(
            0, {"name": "api", "kind": "rest", "base_url": "https://x", "auth": {"type": "digest"}, "start_date": "2026-11-01", "target": {"table": "api"}}
        ),
        ["source 'api'", "field 'auth.type'", "unknown type 'digest'", "'api_key'"],
    ),
    "unknown column type": (
        lambda s: s[0].update(contract={"columns": {"amount": {"type": "varchar"}}}),
        ["source 'orders'", "field 'contract.columns.amount.type'", "unknown type 'varchar'", "decimal(p,s)"],
    ),
    "bad source name": (lambda s: s[0].update(name="Orders-EU"), ["sources[0]", "field 'name'", "lower-case letters"]),
    "unknown field": (lambda s: s[0].update(watermark="x"), ["source 'orders'", "field 'watermark'", "unknown field"]),
    "contract key not declared": (
        lambda s: s[0].update(contract={"keys": ["session"], "columns": {"amount": {"type": "float"}}}),
        [
            "source 'orders'",
            "field 'contract'",
            "`keys` ['session'] are not declared in `columns`",
            "fix: declare each, e.g. session: {type: string, required: true}",
        ],
    ),
    "start date in the future": (
        lambda s: s[1].update(start_date=TOMORROW.isoformat()),
        [
            "source 'customers' (sources[1])",
            "field 'start_date'",
            f"{TOMORROW} is in the future (today, UTC, is {TODAY})",
            f"fix: set start_date to {TODAY} or earlier",
        ],
    ),
}


def write_sources(workdir, mutate=None):
    data = copy.deepcopy(GOOD)
    if mutate:
        mutate(data["sources"])
    path = workdir / "sources.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_good_file_builds_two_assets_per_source(workdir):
    defs = build_definitions(write_sources(workdir), str(workdir / "secrets.toml"))

    keys = {asset.key.to_user_string() for asset in defs.assets}
    assert keys == {"raw/orders_raw", "raw/customers_raw", "warehouse/shop/orders", "warehouse/customers"}
    raw = next(asset for asset in defs.assets if asset.key.to_user_string() == "raw/orders_raw")
    assert raw.backfill_policy.max_partitions_per_run is None
    assert raw.partitions_def.get_first_partition_key() == "2026-11-01"


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_fails_at_load_naming_file_source_and_field(workdir, case):
    mutate, expected = BAD[case]
    path = write_sources(workdir, mutate)

    with pytest.raises(SourcesConfigError) as raised:
        build_definitions(path, str(workdir / "secrets.toml"))

    message = str(raised.value)
    assert str(path.resolve()) in message
    for fragment in expected:
        assert fragment in message


def test_every_problem_is_reported_at_once(workdir):
    def four_problems(sources):
        sources[0].update(start_date="yesterday", connection="postgresql+psycopg://etl:${MISSING_PW}@db/shop")
        sources[1].update(kind="ftp", name="orders")

    with pytest.raises(SourcesConfigError) as raised:
        build_definitions(write_sources(workdir, four_problems), str(workdir / "secrets.toml"))

    problems = str(raised.value).splitlines()[1:]
    assert len(problems) == 4
    assert any("field 'start_date'" in p for p in problems)
    assert any("unknown kind 'ftp'" in p for p in problems)
    assert any("duplicate of sources[0]" in p for p in problems)
    assert any("secret 'MISSING_PW' not found" in p for p in problems)


def test_secret_from_the_secrets_file_satisfies_the_check(workdir):
    secrets = workdir / "secrets.toml"
    secrets.write_text('ORDERS_DB_PASSWORD = "from-the-file"\n')
    path = write_sources(workdir, lambda s: s[0].update(connection="postgresql+psycopg://etl:${ORDERS_DB_PASSWORD}@db/shop"))

    defs = build_definitions(path, str(secrets))
    assert len(defs.assets) == 4


def test_secrets_fill_url_parts_without_escaping(workdir, monkeypatch):
    monkeypatch.setenv("PG_PASSWORD", "p@ss/w:rd#1")
    url = SecretStore(workdir / "none.toml").url("postgresql+psycopg://etl:${PG_PASSWORD}@db.example.net:5432/shop")

    assert url.password == "p@ss/w:rd#1"
    assert url.host == "db.example.net"
    assert "p@ss" not in url.render_as_string(hide_password=True)
    assert sa.make_url(url.render_as_string(hide_password=False)).password == "p@ss/w:rd#1"


def test_whole_url_from_one_secret(workdir, monkeypatch):
    monkeypatch.setenv("SHOP_DB_URL", "postgresql+psycopg://etl:pw@db/shop")
    path = write_sources(workdir, lambda s: s[0].update(connection="${SHOP_DB_URL}"))

    defs = build_definitions(path, str(workdir / "secrets.toml"))

    assert len(defs.assets) == 4
    assert SecretStore(workdir / "none.toml").url("${SHOP_DB_URL}").database == "shop"


def _validate(env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")} | env_overrides
    return subprocess.run(
        [str(REPO / ".venv/bin/dagster"), "definitions", "validate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dagster_cli_validates_the_bundled_demo():
    result = _validate({})
    assert result.returncode == 0, result.stdout + result.stderr


def test_dagster_cli_rejects_a_bad_file_with_the_message(workdir):
    path = write_sources(workdir, lambda s: s[0].update(start_date="2026-02-30"))
    result = _validate({"ETL_SOURCES_FILE": str(path)})

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "source 'orders'" in output and "field 'start_date'" in output
    assert DEMO_SOURCES_FILE.exists()


def test_dagster_cli_rejects_an_empty_source_list(workdir):
    """It passed `dagster definitions validate`, and a run then failed with Could not find job '__ASSET_JOB'."""
    path = workdir / "sources.yaml"
    path.write_text("sources: []\n")
    result = _validate({"ETL_SOURCES_FILE": str(path)})

    assert result.returncode != 0
    assert f"no sources configured in {path.resolve()}" in result.stdout + result.stderr


def test_every_problem_names_its_line_in_the_file(workdir):
    path = workdir / "sources.yaml"
    path.write_text(
        "sources:\n"
        "  - name: orders\n"
        "    kind: sql\n"
        "    connection: sqlite:///shop.db\n"
        "    table: orders\n"
        "    start_date: 2026-13-01\n"
        "    target: {table: orders}\n"
        "  - name: orders\n"
        "    kind: rest\n"
        "    base_url: https://api.example.net\n"
        "    path: /x\n"
        "    start_date: 2026-11-01\n"
        '    target: {table: "x; DROP TABLE y"}\n'
    )

    with pytest.raises(SourcesConfigError) as caught:
        load_sources(path, SecretStore(workdir / "none.toml"))

    message = str(caught.value)
    assert "line 6: source 'orders' (sources[0]), field 'start_date'" in message
    assert "line 8: source 'orders' (sources[1]), field 'name': duplicate of sources[0]" in message
    assert "line 13: source 'orders' (sources[1]), field 'target.table'" in message


def _file(name: str, data: bytes):
    def make(folder):
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def _zip(name: str, member: str):
    def make(folder):
        path = folder / name
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(member, "<x/>")
        return path

    return make


def _directory(folder):
    path = folder / "config"
    path.mkdir()
    (path / "sources.yaml").write_text(yaml.safe_dump(GOOD))
    return path


def _workbook_without_rows(folder):
    from etl_resources.config.excel import write_workbook

    write_workbook(folder / "jobs.xlsx", [])
    return folder / "jobs.xlsx"


def _workbook_with_sheets(*names: str):
    def make(folder):
        from openpyxl import Workbook

        book = Workbook()
        book.active.title = names[0]
        for name in names[1:]:
            book.create_sheet(name)
        book.save(folder / "jobs.xlsx")
        return folder / "jobs.xlsx"

    return make


def _sources(entries: list[dict]) -> bytes:
    return yaml.safe_dump({"sources": entries}).encode()


DISABLED = [dict(source, enabled=False) for source in GOOD["sources"]]
# Files that are not a sources file at all: each gets one line naming the file and the fix, never a traceback.
BROKEN_FILES = {
    "latin-1 text": (
        _file("sources.yaml", "sources:\n  - name: café\n".encode("latin-1")),
        ["is not UTF-8 text: byte 0xe9 at line 2, column 14", "fix: save it as UTF-8"],
    ),
    "binary": (_file("sources.yaml", bytes(range(256))), ["is a binary file, not YAML text", "fix:"]),
    "workbook named .yaml": (
        _zip("sources.yaml", "[Content_Types].xml"),
        ["is a zip archive, such as an Excel workbook", "fix: a workbook needs the extension .xlsx"],
    ),
    "csv named .xlsx": (
        _file("jobs.xlsx", b"source_name,source_type,table_name,start_date\nerp,postgresql,orders,2026-01-01\n"),
        ["is not an Excel workbook: it holds text, such as CSV", "fix: open it in Excel and save it as 'Excel Workbook (.xlsx)'"],
    ),
    "old .xls named .xlsx": (_file("jobs.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)), ["is an old Excel .xls", "fix: open it in Excel"]),
    "zip that is no workbook": (_zip("jobs.xlsx", "notes.txt"), ["is not an Excel .xlsx workbook", "[Content_Types].xml", "fix: open it in Excel"]),
    "empty .xlsx": (_file("jobs.xlsx", b""), ["is empty, 0 bytes", "fix: open it in Excel"]),
    "workbook without rows": (_workbook_without_rows, ["no sources configured in", "sheet 'sources' has no rows under its header", "fix: add a row"]),
    "workbook without a sheet 'sources'": (
        _workbook_with_sheets("Jobs", "Notes"),
        ["has no sheet 'sources' (sheets: Jobs, Notes; fix: name the job list's sheet 'sources')"],
    ),
    "workbook with an empty sheet 'sources'": (_workbook_with_sheets("sources"), ["sheet 'sources' is empty", "fix: start from `etl-config template`"]),
    "directory": (_directory, ["is a directory", "fix: give the file's path, e.g. ", "config/sources.yaml"]),
    "empty file": (_file("sources.yaml", b""), ["is empty", "fix: start it with `sources:`"]),
    "only comments": (_file("sources.yaml", b"# the sources\n"), ["is empty", "fix: start it with `sources:`"]),
    "a list without sources:": (
        _file("sources.yaml", yaml.safe_dump(GOOD["sources"]).encode()),
        ["holds a list, not a mapping with `sources:`", "fix: put `sources:` on the first line"],
    ),
    "sources: []": (_file("sources.yaml", b"sources: []\n"), ["no sources configured in", "fix: add one, as in the README"]),
    "sources: with nothing under it": (_file("sources.yaml", b"sources:\n"), ["no sources configured in", "fix: add one"]),
    "every source disabled": (_file("sources.yaml", _sources(DISABLED)), ["no enabled source in", "all 2 have `enabled: false`", "fix: set `enabled: true`"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN_FILES))
def test_a_broken_file_fails_at_load_with_one_line_naming_it_and_the_fix(workdir, case):
    make, expected = BROKEN_FILES[case]
    path = make(workdir)

    with pytest.raises(SourcesConfigError) as raised:
        build_definitions(path, str(workdir / "secrets.toml"))

    message = str(raised.value)
    assert "\n" not in message and str(path.resolve()) in message
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_file_with_a_byte_order_mark_loads(workdir, encoding):
    """Windows editors write UTF-8 with a BOM, and PowerShell 5 writes UTF-16; YAML allows both."""
    path = workdir / "sources.yaml"
    path.write_bytes(yaml.safe_dump(GOOD, allow_unicode=True).replace("orders", "ordérs", 1).encode(encoding))

    with pytest.raises(SourcesConfigError, match="'ordérs' is not a safe name"):
        load_sources(path, None)
    path.write_bytes(yaml.safe_dump(GOOD).encode(encoding))
    assert [source.name for source in load_sources(path, None).sources] == ["orders", "customers"]


def test_a_start_date_of_today_or_on_a_disabled_source_is_fine(workdir):
    """Today's partition appears once the day is over; a disabled source builds no partitions at all."""
    path = write_sources(workdir, lambda s: (s[0].update(start_date=TODAY.isoformat()), s[1].update(start_date="2099-01-01", enabled=False)))

    assert load_sources(path, None).sources[0].start_date == TODAY


def test_an_exports_start_date_in_the_future_is_named(workdir):
    data = copy.deepcopy(GOOD) | {
        "exports": [
            {
                "name": "weekly",
                "query": "SELECT 1",
                "reads": ["orders"],
                "object": "Metric__c",
                "external_id_field": "Key__c",
                "start_date": TOMORROW.isoformat(),
                "connection": {"client_id": "id", "client_secret": "secret"},
            }
        ]
    }
    path = workdir / "sources.yaml"
    path.write_text(yaml.safe_dump(data))

    with pytest.raises(SourcesConfigError, match=rf"export 'weekly' \(exports\[0\]\), field 'start_date': {TOMORROW} is in the future"):
        load_sources(path, None)


@pytest.mark.parametrize(
    ("content", "where"),
    [(b"ORDERS_DB_PASSWORD = s3cr3t-value\n", "at line 1, column 22"), ('ORDERS_DB_PASSWORD = "s3cr3t-välue"\n'.encode("latin-1"), "line 1")],
    ids=["unquoted value", "latin-1 text"],
)
def test_a_broken_secrets_file_is_named_for_every_secret_without_its_values(workdir, content, where):
    secrets = workdir / "secrets.toml"
    secrets.write_bytes(content)
    path = write_sources(workdir, lambda s: [source.update(connection="postgresql+psycopg://etl:${ORDERS_DB_PASSWORD}@db/shop") for source in s])

    with pytest.raises(SourcesConfigError) as raised:
        build_definitions(path, str(secrets))

    problems = str(raised.value).splitlines()[1:]
    assert len(problems) == 2 and all(f"secrets file {secrets.resolve()} is not valid UTF-8 TOML" in p and where in p for p in problems)
    assert "s3cr3t" not in str(raised.value) and 'Fix: write one `NAME = "value"` a line' in problems[0]
