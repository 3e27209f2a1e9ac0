"""The bundled demo on embedded defaults: SQLite shop → local Parquet lake → SQLite warehouse."""

import datetime as dt
import shutil
import sqlite3
import subprocess
import sys

import dagster as dg
import polars as pl
import pytest

from etl_assets.demo.events_api import DEMO_API_PORT
from etl_tests.support.servers import REPO


@pytest.fixture
def yesterday() -> str:
    """Read per test, not at import: a suite that runs past midnight UTC would otherwise expect the wrong days."""
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


def source_orders_on(day: str) -> int:
    with sqlite3.connect(".etl/demo/shop.db") as conn:
        return conn.execute("SELECT COUNT(*) FROM orders WHERE substr(ordered_at, 1, 10) = ?", (day,)).fetchone()[0]


def test_demo_command_materializes_the_last_days_and_says_where(workdir, yesterday):
    shutil.copy(REPO / "dagster.yaml", workdir / "dagster.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "etl_assets.demo", "2"],
        cwd=workdir,
        env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(workdir)},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "succeeded" in result.stdout
    day_before = (dt.date.fromisoformat(yesterday) - dt.timedelta(days=1)).isoformat()
    for day in (day_before, yesterday):
        partition = workdir / f".etl/lake/raw/shop_orders/date={day}"
        assert str(partition) in result.stdout
        assert len(list(partition.glob("part-*.parquet"))) == 1
        assert pl.read_parquet(partition / "*.parquet").height == source_orders_on(day)
    with sqlite3.connect(workdir / ".etl/warehouse.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders WHERE _partition = ?", (yesterday,)).fetchone()[0] == source_orders_on(yesterday)
        assert conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 2 * 200
    # Dagster's own storage under DAGSTER_HOME, which `dagster dev` then shows.
    assert (workdir / ".etl/dagster/storage").is_dir()


def test_a_demo_day_over_the_threshold_blocks_only_that_day_of_that_source(workdir, yesterday):
    """The demo API serves one bad day (its second argument); the demo's run reports it, loads everything else
    and exits non-zero."""
    shutil.copy(REPO / "dagster.yaml", workdir / "dagster.yaml")
    env = {"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(workdir)}
    api = subprocess.Popen([sys.executable, "-m", "etl_assets.demo.events_api", str(DEMO_API_PORT), yesterday], cwd=workdir, env=env, stdout=subprocess.PIPE)
    try:
        api.stdout.readline()  # it prints its address once it listens
        result = subprocess.run([sys.executable, "-m", "etl_assets.demo", "2"], cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    finally:
        api.terminate()
        api.wait()

    assert result.returncode == 1 and "FAILED" in result.stdout
    assert f"{yesterday} FAILED (ERROR) - reject rate 0.1 above reject_rate_max 0.05 (24 of 240 rows)" in result.stdout
    day_before = (dt.date.fromisoformat(yesterday) - dt.timedelta(days=1)).isoformat()
    with sqlite3.connect(workdir / ".etl/warehouse.db") as conn:
        assert conn.execute("SELECT DISTINCT _partition FROM events").fetchall() == [(day_before,)]
        assert conn.execute("SELECT COUNT(DISTINCT _partition) FROM orders").fetchone()[0] == 2  # other sources load both days
        assert conn.execute("SELECT COUNT(DISTINCT _partition) FROM customers").fetchone()[0] == 2


SHOP_TABLES = ["raw/shop_orders_raw", "warehouse/shop/orders", "raw/shop_customers_raw", "warehouse/shop/customers"]


def test_rematerializing_a_partition_leaves_the_same_rows(platform, demo_sources, yesterday):
    defs = platform.configure(demo_sources)
    platform.materialize(defs, yesterday, selection=SHOP_TABLES)
    first_files = platform.partition_listing(defs, "raw/shop_orders", yesterday)

    platform.materialize(defs, yesterday, selection=SHOP_TABLES)

    expected = source_orders_on(yesterday)
    listing = platform.partition_listing(defs, "raw/shop_orders", yesterday)
    manifest = platform.manifest(defs, "raw/shop_orders", yesterday)
    assert listing == sorted(manifest["files"] + ["_manifest.json"])
    first_parts = {name for name in first_files if name.startswith("part-")}
    assert first_parts and first_parts.isdisjoint(listing)  # the first write's parts are gone
    assert manifest["rows"] == expected
    rows = platform.query(defs, "SELECT COUNT(*), COUNT(DISTINCT order_id) FROM orders WHERE _partition = :p", p=yesterday)
    assert rows == [(expected, expected)]
    assert platform.query(defs, "SELECT COUNT(*) FROM customers") == [(200,)]
    audit = platform.query(defs, "SELECT source_name, step, status, rows_loaded FROM etl_audit_log WHERE partition_key = :p ORDER BY id", p=yesterday)
    assert (
        audit
        == [
            ("shop_customers", "load", "success", 200),
            ("shop_orders", "load", "success", expected),
        ]
        * 2
    )


def test_a_lake_written_before_the_keys_gained_their_suffix_is_read_by_the_new_keys(platform, workdir, demo_sources, yesterday):
    """The raw asset's key says raw/shop_orders_raw; its files stay at raw/shop_orders/date=…, as before."""
    defs = platform.configure(demo_sources)
    # Another instance writes the day, as the old keys did: this one has no record of it.
    with dg.instance_for_test() as before_upgrade:
        raw = dg.materialize(
            list(defs.assets), resources=defs.resources, instance=before_upgrade, partition_key=yesterday, selection=[dg.AssetKey(["raw", "shop_orders_raw"])]
        )
    partition = workdir / f".etl/lake/raw/shop_orders/date={yesterday}"
    assert len(list(partition.glob("part-*.parquet"))) == 1 and (partition / "_manifest.json").is_file()
    assert raw.asset_materializations_for_node("extract_shop_orders")[0].metadata["lake_path"].value == str(partition)

    result = platform.materialize(defs, yesterday, selection=["warehouse/shop/orders"])

    assert result.success
    assert platform.query(defs, "SELECT COUNT(*) FROM orders WHERE _partition = :p", p=yesterday) == [(source_orders_on(yesterday),)]


def test_a_lake_that_cannot_be_written_fails_the_run_and_is_audited(platform, workdir, demo_sources, yesterday):
    (workdir / "not-a-folder").write_text("a file where the lake should be")
    defs = platform.configure(demo_sources, lake_url=str(workdir / "not-a-folder/lake"))

    result = platform.materialize(defs, yesterday, selection=["raw/shop_orders_raw", "warehouse/shop/orders"], raise_on_error=False)

    assert not result.success
    audit = platform.query(defs, "SELECT source_name, partition_key, step, status, error_message FROM etl_audit_log")
    assert len(audit) == 1
    assert audit[0][:4] == ("shop_orders", yesterday, "extract", "failure")
    assert "not-a-folder" in audit[0][4]
    assert platform.query(defs, "SELECT name FROM sqlite_master WHERE name = 'orders'") == []


def test_a_range_that_runs_past_today_loads_the_days_that_exist(platform, demo_sources, yesterday):
    defs = platform.configure(demo_sources)
    future = (dt.date.fromisoformat(yesterday) + dt.timedelta(days=5)).isoformat()

    result = platform.materialize(defs, yesterday, future, selection=["raw/shop_orders_raw", "warehouse/shop/orders"])

    assert result.success  # today's partition does not exist until the day is over
    assert platform.materialized_partitions(["raw", "shop_orders_raw"]) == {yesterday}
    assert platform.query(defs, "SELECT DISTINCT _partition FROM orders") == [(yesterday,)]


def test_the_demo_loads_into_a_real_sql_server(platform, demo_sources, yesterday, mssql_url):
    """Only where a SQL Server or Azure SQL database is reachable (ETL_TEST_MSSQL_URL); none can run here."""
    defs = platform.configure(demo_sources, warehouse_url=mssql_url)

    result = platform.materialize(defs, yesterday, selection=["raw/shop_orders_raw", "warehouse/shop/orders"])
    platform.materialize(defs, yesterday, selection=["warehouse/shop/orders"])

    assert result.success
    assert (
        platform.query(defs, "SELECT COUNT(*) FROM shop.orders WHERE _partition = :day", day=yesterday)[0][0]
        == platform.manifest(defs, "raw/shop_orders", yesterday)["rows"]
    )
    assert [row[:2] for row in platform.query(defs, "SELECT step, status FROM etl_audit_log ORDER BY id")][-2:] == [("load", "success"), ("load", "success")]
