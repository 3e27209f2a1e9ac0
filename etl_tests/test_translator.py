"""Asset specs as the code location shows them: keys, groups, kinds, owners, tags and lake folders come from
`etl_assets/translator.py` for the raw, rejects, warehouse and export assets alike."""

import dagster as dg
import pytest

SOURCES = """
sources:
  - name: orders
    kind: sql
    connection: sqlite:///shop.db
    table: orders
    mode: snapshot
    start_date: 2026-11-01
    group: erp
    owners: [team:finance-data, ana@example.com]
    tags: {domain: sales, tier: gold}
    target: {schema: dw, table: orders}
    contract:
      columns:
        order_id: {type: int, required: true}
  - name: customers
    kind: sql
    connection: sqlite:///shop.db
    table: customers
    mode: snapshot
    start_date: 2026-11-01
    target: {table: customers}
exports:
  - name: order_metrics
    query: "SELECT 1 AS Key__c"
    reads: [orders, customers]
    object: Metric__c
    external_id_field: Key__c
    start_date: 2026-11-02
    connection: {domain: "http://127.0.0.1:1", client_id: a, client_secret: s, username: u, password: p, security_token: t}
"""


@pytest.fixture
def specs(platform) -> dict[str, dg.AssetSpec]:
    defs = platform.configure(SOURCES)
    return {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}


def test_a_source_with_group_owners_and_tags_gives_them_to_each_of_its_assets(specs):
    assert set(specs) == {
        "raw/orders_raw",
        "rejects/orders_rejects",
        "warehouse/dw/orders",
        "raw/customers_raw",
        "warehouse/customers",
        "salesforce/order_metrics",
    }
    for key in ("raw/orders_raw", "rejects/orders_rejects", "warehouse/dw/orders"):
        spec = specs[key]
        assert spec.group_name == "erp", key
        assert spec.owners == ["team:finance-data", "ana@example.com"], key
        assert {tag: value for tag, value in spec.tags.items() if not tag.startswith("dagster/kind/")} == {"domain": "sales", "tier": "gold"}, key
    assert specs["raw/orders_raw"].kinds == {"sqlite", "parquet"}
    assert specs["rejects/orders_rejects"].kinds == {"parquet"}
    assert specs["warehouse/dw/orders"].kinds == {"sqlite", "table"}
    assert specs["raw/orders_raw"].metadata == {"source": "orders", "kind": "sql", "lake_dataset": "raw/orders"}
    assert specs["rejects/orders_rejects"].metadata == {"lake_dataset": "rejects/orders"}
    assert specs["warehouse/dw/orders"].metadata == {"source": "orders", "dagster/table_name": "dw.orders"}
    assert specs["warehouse/dw/orders"].description == "dw.orders in the warehouse: each day of raw/orders_raw, replaced as a whole on every load."
    assert [dep.asset_key for dep in specs["warehouse/dw/orders"].deps] == [dg.AssetKey(["raw", "orders_raw"])]


def test_without_a_group_a_source_is_its_own_group_and_exports_share_one(specs):
    assert specs["raw/customers_raw"].group_name == specs["warehouse/customers"].group_name == "customers"
    assert specs["raw/customers_raw"].owners == [] and specs["raw/customers_raw"].kinds == {"sqlite", "parquet"}
    export = specs["salesforce/order_metrics"]
    assert export.group_name == "exports" and export.kinds == {"salesforce"}
    assert {dep.asset_key.to_user_string() for dep in export.deps} == {"warehouse/dw/orders", "warehouse/customers"}
    assert export.description == "Rows of a warehouse query, upserted each week into Salesforce Metric__c by Key__c."
