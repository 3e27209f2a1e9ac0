"""The code location as a user runs it: `dagster dev` from workspace.yaml, driven through its GraphQL API."""

import datetime as dt
import functools
import json
import sqlite3
import time

import httpx
import psycopg
import pytest

from etl_tests.conftest import webhook_receiver
from etl_tests.support.servers import dagster_dev_server

LAUNCH_BACKFILL = """
mutation($p: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $p) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } ... on PythonError { message } }
}"""
RUNS_OF_BACKFILL = """
query($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) { ... on Runs { results { runId status } } }
}"""
ASSET = """
query($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      description
      kinds
      owners { ... on TeamAssetOwner { team } }
      tags { key value }
      assetPartitionStatuses { ... on TimePartitionStatuses { ranges { status startKey endKey } } }
    }
  }
}"""

CHECKS = """
query($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      assetChecksOrError {
        ... on AssetChecks {
          checks {
            name
            executionForLatestMaterialization { status evaluation { success partition metadataEntries { label } } }
            partitionStatuses { ... on AssetCheckTimePartitionStatuses { ranges { status startKey endKey } } }
          }
        }
      }
    }
  }
}"""


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory):
    with dagster_dev_server(tmp_path_factory.mktemp("project")) as server:
        yield server


def graphql(server, query: str, **variables) -> dict:
    response = httpx.post(server.graphql_url, json={"query": query, "variables": variables}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def graph_labels_by_source(nodes: list[dict]) -> dict[str, list[str]]:
    """What the asset graph labels each source's nodes (their keys' last segments): the nodes its extract
    step writes, and those they feed."""
    families: dict[str, set[tuple[str, ...]]] = {}
    for node in nodes:
        for op in node["opNames"]:
            if op.startswith("extract_"):
                family = families.setdefault(op.removeprefix("extract_"), set())
                family |= {tuple(node["assetKey"]["path"])} | {tuple(key["path"]) for key in node["dependedByKeys"]}
    return {source: sorted(path[-1] for path in paths) for source, paths in families.items()}


def test_the_ui_lists_every_asset_of_the_demo(dagster_dev):
    data = graphql(dagster_dev, "{ assetNodes { assetKey { path } isPartitioned groupName opNames dependedByKeys { path } } }")

    nodes = {"/".join(node["assetKey"]["path"]): node for node in data["assetNodes"]}
    assert set(nodes) == {
        "raw/shop_orders_raw",
        "raw/shop_customers_raw",
        "raw/ecom_events_raw",
        "rejects/ecom_events_rejects",
        "warehouse/shop/orders",
        "warehouse/shop/customers",
        "warehouse/shop/events",
    }
    assert all(node["isPartitioned"] and node["groupName"] == "shop" for node in nodes.values())
    labels = graph_labels_by_source(data["assetNodes"])
    assert labels == {
        "shop_orders": ["orders", "shop_orders_raw"],
        "shop_customers": ["customers", "shop_customers_raw"],
        "ecom_events": ["ecom_events_raw", "ecom_events_rejects", "events"],
    }
    assert all(len(set(names)) == len(names) for names in labels.values()), "a source's nodes would read alike in the graph"
    orders = graphql(dagster_dev, ASSET, path=["raw", "shop_orders_raw"])["assetNodeOrError"]
    assert orders["description"].startswith("Orders placed in the demo shop")
    assert set(orders["kinds"]) == {"sqlite", "parquet"}
    assert orders["owners"] == [{"team": "shop-data"}] and {"key": "domain", "value": "sales"} in orders["tags"]
    assert set(graphql(dagster_dev, ASSET, path=["warehouse", "shop", "orders"])["assetNodeOrError"]["kinds"]) == {"sqlite", "table"}


def test_a_date_range_backfill_from_graphql_runs_once_and_loads_the_warehouse(dagster_dev):
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    start, end = (last - dt.timedelta(days=2)).isoformat(), last.isoformat()

    backfill_id, status = backfill(dagster_dev, [["raw", "shop_orders_raw"], ["warehouse", "shop", "orders"]], start, end)

    assert status == "COMPLETED_SUCCESS"
    runs = graphql(dagster_dev, RUNS_OF_BACKFILL, id=backfill_id)["runsOrError"]["results"]
    assert [run["status"] for run in runs] == ["SUCCESS"]
    for path in (["raw", "shop_orders_raw"], ["warehouse", "shop", "orders"]):
        statuses = graphql(dagster_dev, ASSET, path=path)["assetNodeOrError"]["assetPartitionStatuses"]["ranges"]
        assert {"status": "MATERIALIZED", "startKey": start, "endKey": end} in statuses
    checks = graphql(dagster_dev, CHECKS, path=["raw", "shop_orders_raw"])["assetNodeOrError"]["assetChecksOrError"]["checks"]
    executions = {check["name"]: check["executionForLatestMaterialization"] for check in checks}
    assert set(executions) == {"row_count", "schema_unchanged"}
    assert all(e["status"] == "SUCCEEDED" and e["evaluation"]["success"] for e in executions.values())
    assert {"rows", "min_rows"} <= {m["label"] for m in executions["row_count"]["evaluation"]["metadataEntries"]}
    with sqlite3.connect(dagster_dev.home / ".etl/demo/shop.db") as source, sqlite3.connect(dagster_dev.home / ".etl/warehouse.db") as warehouse:
        expected = source.execute("SELECT COUNT(*) FROM orders WHERE substr(ordered_at, 1, 10) BETWEEN ? AND ?", (start, end)).fetchone()[0]
        loaded = warehouse.execute("SELECT COUNT(*), COUNT(DISTINCT _partition) FROM orders WHERE _partition BETWEEN ? AND ?", (start, end)).fetchone()
    assert loaded == (expected, 3) and expected > 0


def test_a_long_backfill_of_a_chunked_source_runs_as_weekly_runs(dagster_dev):
    """shop_customers has `backfill_days_per_run: 7`: ten days make two runs of at most seven days each."""
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=5)
    start, end = (last - dt.timedelta(days=9)).isoformat(), last.isoformat()

    backfill_id, status = backfill(dagster_dev, [["raw", "shop_customers_raw"], ["warehouse", "shop", "customers"]], start, end)

    assert status == "COMPLETED_SUCCESS"
    runs = graphql(dagster_dev, RUNS_OF_BACKFILL, id=backfill_id)["runsOrError"]["results"]
    assert [run["status"] for run in runs] == ["SUCCESS", "SUCCESS"]
    with sqlite3.connect(dagster_dev.home / ".etl/warehouse.db") as warehouse:
        days = warehouse.execute("SELECT COUNT(DISTINCT _partition) FROM customers WHERE _partition BETWEEN ? AND ?", (start, end)).fetchone()[0]
    assert days == 10


LAUNCH_RUN = """
mutation($p: ExecutionParams!) {
  launchRun(executionParams: $p) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
POOL = """{ instance { concurrencyLimit(concurrencyKey: "warehouse") { slotCount claimedSlots { runId } pendingSteps { runId } } } }"""
DONE = ("SUCCESS", "FAILURE", "CANCELED")


def launch_day(server, day: str) -> str:
    params = {
        "selector": {"repositoryLocationName": "etl", "repositoryName": "__repository__", "jobName": "shop_orders_daily"},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]},
    }
    launched = graphql(server, LAUNCH_RUN, p=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def wait_for(condition, what: str, server, seconds: float = 240):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}; see {server.home / 'dagster-dev.log'}"
        time.sleep(0.5)
    return value


def run_statuses(server, run_ids: list[str]) -> list[str]:
    return [graphql(server, RUN_STATUS, id=run_id)["runOrError"]["status"] for run_id in run_ids]


def backfill(server, paths: list[list[str]], start: str, end: str) -> tuple[str, str]:
    """Launch a backfill of `paths` over start..end through GraphQL and wait for it: (backfill id, final status)."""
    params = {"partitionsByAssets": [{"assetKey": {"path": path}, "partitions": {"range": {"start": start, "end": end}}} for path in paths]}
    launched = graphql(server, LAUNCH_BACKFILL, p=params)["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    return backfill_id, wait_for(lambda: backfill_done(server, backfill_id), "the backfill did not finish", server)


def backfill_done(server, backfill_id: str) -> str | None:
    status = graphql(server, BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]["status"]
    return status if status in ("COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED") else None


def waiting_on_lock(conn, database: str) -> int:
    return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", (database,)).fetchone()[0]


def pool_when(server, pending: int) -> dict | None:
    pool = graphql(server, POOL)["instance"]["concurrencyLimit"]
    return pool if len(pool["pendingSteps"]) >= pending else None


def finished(server, run_ids: list[str]) -> list[str] | None:
    statuses = run_statuses(server, run_ids)
    return statuses if all(status in DONE for status in statuses) else None


@pytest.fixture(scope="module")
def dagster_dev_on_postgres(tmp_path_factory, postgres):
    warehouse = postgres.create_database("warehouse")
    with webhook_receiver() as hook:
        env = {"ETL_WAREHOUSE_URL": postgres.url(warehouse), "ETL_ALERT_WEBHOOK_URL": hook["url"]}
        with dagster_dev_server(tmp_path_factory.mktemp("project"), env=env) as server:
            yield server, warehouse, hook


def test_the_warehouse_pool_lets_one_load_at_a_time_hold_a_connection(dagster_dev_on_postgres, postgres):
    """The local instance's `warehouse` pool has 1 slot. One load is stalled on a table lock the test holds;
    three runs are then launched together: their extracts run, and exactly one load waits in PostgreSQL while
    the others wait for the slot in Dagster, never opening a warehouse connection of their own."""
    server, warehouse, _ = dagster_dev_on_postgres
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    days = [(last - dt.timedelta(days=i)).isoformat() for i in range(4)]
    first = launch_day(server, days[0])
    wait_for(lambda: run_statuses(server, [first]) == ["SUCCESS"], "the first load did not succeed", server)
    # The pool takes the instance's default limit when a step first uses it.
    assert graphql(server, POOL)["instance"]["concurrencyLimit"]["slotCount"] == 1

    connect = functools.partial(psycopg.connect, host="127.0.0.1", port=postgres.port, user="postgres", dbname=warehouse)
    # pg_stat_activity is read from its own autocommit connection: inside a transaction it would stay a snapshot.
    with connect() as lock, connect(autocommit=True) as watch:
        lock.execute("LOCK TABLE shop.orders IN ACCESS EXCLUSIVE MODE")
        run_ids = [launch_day(server, day) for day in days[1:]]
        wait_for(lambda: pool_when(server, pending=2), "two loads never queued for the warehouse slot", server)
        wait_for(lambda: waiting_on_lock(watch, warehouse) == 1, "the load holding the slot never reached the table", server)
        time.sleep(2)
        pool = graphql(server, POOL)["instance"]["concurrencyLimit"]
        # One slot held, the other loads queued in Dagster, and only one of them ever reached PostgreSQL.
        assert len(pool["claimedSlots"]) == 1 and len(pool["pendingSteps"]) >= 2 and waiting_on_lock(watch, warehouse) == 1
        lock.rollback()

    statuses = wait_for(lambda: finished(server, run_ids), "runs did not finish", server)
    assert statuses == ["SUCCESS"] * 3
    with connect() as conn:
        loaded = {day for (day,) in conn.execute("SELECT DISTINCT _partition FROM shop.orders")}
    assert loaded == set(days)


def test_the_running_daemon_posts_a_failed_load_to_the_webhook(dagster_dev_on_postgres, postgres):
    """The alert sensor as the daemon runs it: a load the warehouse refuses (a constraint no row meets)
    fails its run, and within a few sensor ticks the webhook has a post naming that run."""
    server, warehouse, hook = dagster_dev_on_postgres
    days = [(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=i)).isoformat() for i in (8, 9)]
    first = launch_day(server, days[0])
    wait_for(lambda: run_statuses(server, [first]) == ["SUCCESS"], "the first load did not succeed", server)
    with psycopg.connect(host="127.0.0.1", port=postgres.port, user="postgres", dbname=warehouse, autocommit=True) as conn:
        conn.execute("ALTER TABLE shop.orders ADD CONSTRAINT refuse_new_rows CHECK (order_id < 0) NOT VALID")
    try:
        failed = launch_day(server, days[1])
        assert wait_for(lambda: finished(server, [failed]), "the refused load did not finish", server) == ["FAILURE"]

        post = wait_for(lambda: next((b for b in hook["received"] if failed in json.dumps(b)), None), "no alert was posted", server, 180)
    finally:
        with psycopg.connect(host="127.0.0.1", port=postgres.port, user="postgres", dbname=warehouse, autocommit=True) as conn:
            conn.execute("ALTER TABLE shop.orders DROP CONSTRAINT refuse_new_rows")
    assert "shop_orders_daily" in json.dumps(post) and days[1] in json.dumps(post)
