"""A bad sources file fails when the definitions load, with one message naming the file, the source and the field."""

import copy
import os
import subprocess

import pytest
import sqlalchemy as sa
import yaml

from etl_assets.definitions import build_definitions
from etl_assets.demo.shop import DEMO_SOURCES_FILE
from etl_resources.config import SourcesConfigError, load_sources
from etl_resources.secrets import SecretStore
from etl_tests.servers import REPO

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
    "bad schedule": (lambda s: s[0].update(schedule="every night"), ["source 'orders'", "field 'schedule'", "'every night' is not a cron expression", "e.g. '15 0 * * *'"]),
    "bad freshness deadline": (lambda s: s[0].update(freshness={"deadline": "61 * * * *"}), ["source 'orders'", "field 'freshness.deadline'", "not a cron expression"]),
    "bad tag value": (lambda s: s[0].update(tags={"domain": "sales team"}), ["source 'orders'", "field 'tags.domain'", "'sales team' is not a tag value", "63 letters"]),
    "bad owner": (lambda s: s[0].update(owners=["data team"]), ["source 'orders'", "field 'owners.0'", "'data team' is not an owner", "team:<name> or an email"]),
    "files without a contract": (
        lambda s: s.__setitem__(0, {"name": "drops", "kind": "files", "landing": "/srv/landing", "start_date": "2026-11-01", "target": {"table": "drops"}}),
        ["source 'drops'", "a files source needs a `contract`"],
    ),
    "files date pattern without its group": (
        lambda s: s.__setitem__(0, {"name": "drops", "kind": "files", "landing": "/srv/landing", "start_date": "2026-11-01", "target": {"table": "drops"},
                                    "date_pattern": r"\d{8}", "contract": {"columns": {"id": {"type": "int"}}}}),
        ["source 'drops'", "`date_pattern` needs a named group `date`"],
    ),
    "table and query": (lambda s: s[0].update(query="SELECT 1"), ["source 'orders'", "give exactly one of `table` or `query`"]),
    "incremental without watermark": (lambda s: _without(s[0], "watermark_column"), ["source 'orders'", "needs `watermark_column`"]),
    "unsafe target name": (lambda s: s[0]["target"].update(table="x; DROP TABLE y"), ["source 'orders'", "field 'target.table'", "letters, digits and underscores"]),
    "same target twice": (lambda s: s[1]["target"].update(schema="shop", table="orders"), ["source 'customers'", "field 'target'", "already the target of sources[0]"]),
    "unknown auth type": (
        lambda s: s.__setitem__(0, {"name": "api", "kind": "rest", "base_url": "https://x", "auth": {"type": "digest"}, "start_date": "2026-11-01", "target": {"table": "api"}}),
        ["source 'api'", "field 'auth.type'", "unknown type 'digest'", "'api_key'"],
    ),
    "unknown column type": (
        lambda s: s[0].update(contract={"columns": {"amount": {"type": "varchar"}}}),
        ["source 'orders'", "field 'contract.columns.amount.type'", "unknown type 'varchar'", "decimal(p,s)"],
    ),
    "bad source name": (lambda s: s[0].update(name="Orders-EU"), ["sources[0]", "field 'name'", "lower-case letters"]),
    "unknown field": (lambda s: s[0].update(watermark="x"), ["source 'orders'", "field 'watermark'", "unknown field"]),
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
    assert keys == {"raw/orders", "raw/customers", "warehouse/shop/orders", "warehouse/customers"}
    raw = next(asset for asset in defs.assets if asset.key.to_user_string() == "raw/orders")
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
