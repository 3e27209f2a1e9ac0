"""Schedules from the sources file, evaluated against a real instance, and the scheduled run itself."""

import datetime as dt

import dagster as dg
import pytest

from etl_assets.assets.audit_events import run_origin

SOURCES = """
sources:
  - name: shop_orders
    kind: sql
    connection: sqlite:///.etl/demo/shop.db
    table: orders
    mode: incremental
    watermark_column: ordered_at
    start_date: 2026-10-01
    target: {schema: shop, table: orders}
  - name: shop_customers
    kind: sql
    connection: sqlite:///.etl/demo/shop.db
    table: customers
    start_date: 2026-10-01
    schedule: "0 5 * * 1"
    target: {schema: shop, table: customers}
  - name: ad_hoc
    kind: sql
    connection: sqlite:///.etl/demo/shop.db
    table: customers
    start_date: 2026-10-01
    schedule: null
    target: {table: ad_hoc}
"""


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, name: str, at: dt.datetime) -> list[dg.RunRequest]:
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=at, repository_def=defs.get_repository_def())
    return list(defs.resolve_schedule_def(name).evaluate_tick(context).run_requests or [])


def test_each_source_gets_a_running_schedule_for_the_day_that_just_closed(platform, demo_sources):
    defs = platform.configure(SOURCES)

    schedules = {s.name: defs.resolve_schedule_def(s.name) for s in defs.schedules}
    assert set(schedules) == {"shop_orders_schedule", "shop_customers_schedule"}
    assert schedules["shop_orders_schedule"].cron_schedule == "15 0 * * *"
    assert schedules["shop_customers_schedule"].cron_schedule == "0 5 * * 1"
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING and s.execution_timezone == "UTC" for s in schedules.values())

    [request] = tick(defs, platform.instance, "shop_orders_schedule", dt.datetime(2026, 11, 22, 0, 15, tzinfo=dt.UTC))
    assert request.partition_key == "2026-11-21"
    assert schedules["shop_orders_schedule"].job_name == "shop_orders_daily"
    [monday] = tick(defs, platform.instance, "shop_customers_schedule", dt.datetime(2026, 11, 23, 5, 0, tzinfo=dt.UTC))
    assert monday.partition_key == "2026-11-22"


def test_the_scheduled_job_extracts_checks_and_loads_the_day_in_one_run(platform, demo_sources):
    defs = platform.configure(SOURCES)
    day = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()

    result = defs.resolve_job_def("shop_orders_daily").execute_in_process(partition_key=day, instance=platform.instance)

    assert result.success
    run_id = result.run_id
    for key in (["raw", "shop_orders_raw"], ["warehouse", "shop", "orders"]):
        [event] = platform.instance.fetch_materializations(dg.AssetKey(key), limit=1).records
        assert (event.run_id, event.partition_key) == (run_id, day)
    checks = [e for e in result.get_asset_check_evaluations() if e.asset_key == dg.AssetKey(["raw", "shop_orders_raw"])]
    assert checks and all(check.passed for check in checks)
    rows = platform.query(defs, "SELECT COUNT(*) FROM orders WHERE _partition = :day", day=day)[0][0]
    assert rows == platform.manifest(defs, "raw/shop_orders", day)["rows"] > 0
    assert platform.query(defs, "SELECT DISTINCT pipeline_name FROM etl_audit_log") == [("job shop_orders_daily",)]


@pytest.mark.parametrize(
    ("job", "tags", "origin"),
    [
        ("shop_orders_daily", {"dagster/schedule_name": "shop_orders_schedule"}, "schedule shop_orders_schedule"),
        ("__ASSET_JOB", {"dagster/backfill": "abcdefgh"}, "backfill abcdefgh"),
        ("shop_orders_daily", {"dagster/sensor_name": "shop_orders_landing"}, "sensor shop_orders_landing"),
        ("__ASSET_JOB", {}, "materialize (ad hoc)"),
        ("__ephemeral_asset_job__", {}, "materialize (ad hoc)"),
    ],
)
def test_the_audit_names_what_launched_a_run(job, tags, origin):
    assert run_origin(dg.DagsterRun(job_name=job, run_id="r", tags=tags)) == origin


def run_freshness_checks(platform, defs: dg.Definitions) -> dict[dg.AssetKey, bool]:
    checks = list(defs.asset_checks)
    result = dg.materialize(
        [*defs.assets, *checks],
        resources=defs.resources,
        instance=platform.instance,
        selection=dg.AssetSelection.checks(*checks),
        raise_on_error=False,
    )
    return {e.asset_key: e.passed for e in result.get_asset_check_evaluations()}


def test_a_source_whose_last_day_is_missing_after_its_deadline_is_not_fresh(platform, demo_sources):
    """The deadline is midnight, so yesterday must be in the warehouse by now."""
    defs = platform.configure(
        SOURCES.replace("    schedule: null\n", "    schedule: null\n    freshness: null\n").replace(
            "    mode: incremental\n", "    mode: incremental\n    freshness: {deadline: '0 0 * * *', severity: error}\n"
        )
    )
    orders = dg.AssetKey(["warehouse", "shop", "orders"])
    assert {key.asset_key for check in defs.asset_checks for key in check.check_keys} == {orders, dg.AssetKey(["warehouse", "shop", "customers"])}
    assert [s.name for s in defs.sensors if s.name == "etl_freshness"] == ["etl_freshness"]

    assert run_freshness_checks(platform, defs)[orders] is False

    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    platform.materialize(defs, yesterday, selection=["raw/shop_orders_raw", "warehouse/shop/orders"])
    assert run_freshness_checks(platform, defs)[orders] is True
