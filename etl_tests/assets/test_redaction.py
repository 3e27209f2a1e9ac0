"""Secrets with known values go through a pipeline that succeeds and one that fails every way it can here;
then the Dagster instance (event log, runs, captured logs), the working folder (lake, audit queue), the audit
table and the process output are searched for those values."""

from pathlib import Path

import pytest

from etl_tests.support.servers import free_port

DAY = "2026-11-01"
SECRETS = {"SHOP_DB_PASSWORD": "pgSecret7f3a91", "THINGS_API_KEY": "apiSecret2c5e80", "WAREHOUSE_PASSWORD": "whSecretb41d07"}


def sources_yaml(source_port: int, source_db: str, api_url: str) -> str:
    return f"""
sources:
  - name: orders
    kind: sql
    connection: postgresql+psycopg://postgres:${{SHOP_DB_PASSWORD}}@127.0.0.1:{source_port}/{source_db}
    table: orders
    start_date: {DAY}
    target: {{table: orders}}
    step_retries: {{max_retries: 0}}
  - name: things
    kind: rest
    base_url: {api_url}
    path: /page
    auth: {{type: api_key, name: api_key, in: query, value: "${{THINGS_API_KEY}}"}}
    pagination: {{type: page, page_size: 10}}
    retry: {{max_attempts: 2, backoff_seconds: 0.01, max_backoff_seconds: 0.02}}
    start_date: {DAY}
    target: {{table: things}}
"""


def files_under(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}


@pytest.fixture
def secret_env(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def test_no_secret_value_reaches_the_event_log_the_audit_the_lake_or_the_logs(platform, postgres, api, secret_env, workdir, capfd):
    source_db, warehouse_db = postgres.create_database("source"), postgres.create_database("warehouse")
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=postgres.port, user="postgres", dbname=source_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders AS SELECT g AS order_id, g * 1.5 AS amount FROM generate_series(1, 50) g")
    api.state.auth, api.state.secret = "api_key_query", SECRETS["THINGS_API_KEY"]
    warehouse = f"postgresql+psycopg://postgres:${{WAREHOUSE_PASSWORD}}@127.0.0.1:{postgres.port}/{warehouse_db}"
    defs = platform.configure(sources_yaml(postgres.port, source_db, api.url), warehouse_url=warehouse)
    runs = [platform.materialize(defs, DAY)]

    api.state.malformed = True
    runs.append(platform.materialize(defs, DAY, selection=["raw/things_raw"], raise_on_error=False))
    api.state.malformed = False
    api.state.faults.extend([500, 500])
    runs.append(platform.materialize(defs, DAY, selection=["raw/things_raw"], raise_on_error=False))
    dead_source = platform.configure(sources_yaml(free_port(), source_db, api.url), warehouse_url=warehouse)
    runs.append(platform.materialize(dead_source, DAY, selection=["raw/orders_raw"], raise_on_error=False))
    dead_warehouse = platform.configure(sources_yaml(postgres.port, source_db, api.url), warehouse_url=warehouse.replace(str(postgres.port), str(free_port())))
    runs.append(platform.materialize(dead_warehouse, DAY, selection=["warehouse/orders"], raise_on_error=False))

    assert [run.success for run in runs] == [True, False, False, False, False]
    assert list((workdir / ".etl/audit-queue").glob("*.json")), "the failed load's audit row should be queued"
    haystack = files_under(workdir) | files_under(Path(platform.instance.root_directory))
    audit = platform.query(defs, "SELECT * FROM etl_audit_log")
    output = capfd.readouterr()
    texts = {"audit table": repr(audit), "stdout": output.out, "stderr": output.err}
    assert len(audit) >= 4 and any("not JSON" in str(row) for row in audit) and any("gave up" in str(row) for row in audit)
    for name, value in SECRETS.items():
        assert [str(path) for path, content in haystack.items() if value.encode() in content] == [], name
        assert [where for where, text in texts.items() if value in text] == [], name
