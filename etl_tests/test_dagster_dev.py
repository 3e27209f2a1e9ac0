"""The code location as a user runs it: `dagster dev` from workspace.yaml, driven through its GraphQL API."""

import datetime as dt
import sqlite3
import time

import httpx
import pytest

from etl_tests.servers import dagster_dev_server

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
      assetPartitionStatuses { ... on TimePartitionStatuses { ranges { status startKey endKey } } }
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


def test_the_ui_lists_every_asset_of_the_demo(dagster_dev):
    data = graphql(dagster_dev, "{ assetNodes { assetKey { path } isPartitioned groupName } }")

    nodes = {"/".join(node["assetKey"]["path"]): node for node in data["assetNodes"]}
    assert set(nodes) == {
        "raw/shop_orders", "raw/shop_customers", "raw/ecom_events", "rejects/ecom_events",
        "warehouse/shop/orders", "warehouse/shop/customers", "warehouse/shop/events",
    }
    assert all(node["isPartitioned"] and node["groupName"] == "shop" for node in nodes.values())
    orders = graphql(dagster_dev, ASSET, path=["raw", "shop_orders"])["assetNodeOrError"]
    assert orders["description"].startswith("Orders placed in the demo shop")
    assert set(orders["kinds"]) == {"sqlite", "parquet"}
    assert set(graphql(dagster_dev, ASSET, path=["warehouse", "shop", "orders"])["assetNodeOrError"]["kinds"]) == {"sqlite", "table"}


def test_a_date_range_backfill_from_graphql_runs_once_and_loads_the_warehouse(dagster_dev):
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    start, end = (last - dt.timedelta(days=1)).isoformat(), last.isoformat()
    params = {
        "partitionsByAssets": [
            {"assetKey": {"path": path}, "partitions": {"range": {"start": start, "end": end}}}
            for path in (["raw", "shop_orders"], ["warehouse", "shop", "orders"])
        ]
    }

    launched = graphql(dagster_dev, LAUNCH_BACKFILL, p=params)["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    deadline = time.monotonic() + 240
    while (status := graphql(dagster_dev, BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]["status"]) not in ("COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
        assert time.monotonic() < deadline, f"backfill still {status}; see {dagster_dev.home / 'dagster-dev.log'}"
        time.sleep(1)

    assert status == "COMPLETED_SUCCESS"
    runs = graphql(dagster_dev, RUNS_OF_BACKFILL, id=backfill_id)["runsOrError"]["results"]
    assert [run["status"] for run in runs] == ["SUCCESS"]
    statuses = graphql(dagster_dev, ASSET, path=["warehouse", "shop", "orders"])["assetNodeOrError"]["assetPartitionStatuses"]["ranges"]
    assert {"status": "MATERIALIZED", "startKey": start, "endKey": end} in statuses
    with sqlite3.connect(dagster_dev.home / ".etl/demo/shop.db") as source, sqlite3.connect(dagster_dev.home / ".etl/warehouse.db") as warehouse:
        expected = source.execute("SELECT COUNT(*) FROM orders WHERE substr(ordered_at, 1, 10) IN (?, ?)", (start, end)).fetchone()[0]
        loaded = warehouse.execute("SELECT COUNT(*) FROM orders WHERE _partition IN (?, ?)", (start, end)).fetchone()[0]
    assert loaded == expected > 0
