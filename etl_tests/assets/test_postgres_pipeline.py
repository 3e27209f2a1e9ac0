"""PostgreSQL as the source and as the warehouse, both real servers started by the test suite."""

import datetime as dt
import json
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from etl_resources.lake.store import scan_partition
from etl_tests.support.servers import free_port

ORDERS_ONLY = ["raw/orders_raw", "warehouse/dw/orders"]
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]
ROWS_PER_DAY = {day: 10 * (i + 1) for i, day in enumerate([*DAYS, "2026-11-04"])}


def source_yaml(connection: str, *, orders_mode: str = "incremental", retries: str = "{max_retries: 2}") -> str:
    watermark = "    watermark_column: ordered_at\n" if orders_mode == "incremental" else ""
    return f"""
sources:
  - name: orders
    kind: sql
    connection: {connection}
    table: sales.orders
    mode: {orders_mode}
{watermark}    start_date: 2026-11-01
    batch_size: 7
    target: {{schema: dw, table: orders}}
    step_retries: {retries}
  - name: customers
    kind: sql
    connection: {connection}
    query: SELECT customer_id, name FROM sales.customers
    mode: snapshot
    start_date: 2026-11-01
    target: {{schema: dw, table: customers}}
"""


@pytest.fixture
def shop(postgres, platform, monkeypatch):
    """A source database with orders spread over four days (a row on each midnight edge), and an empty warehouse."""
    source_db, warehouse_db = postgres.create_database("source"), postgres.create_database("warehouse")
    engine = sa.create_engine(postgres.url(source_db))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA sales"))
        conn.execute(
            sa.text(
                "CREATE TABLE sales.orders (order_id bigint PRIMARY KEY, customer_id integer NOT NULL, "
                "ordered_at timestamptz NOT NULL, amount numeric(12,2) NOT NULL, note text, paid boolean, tags text[])"
            )
        )
        conn.execute(sa.text("CREATE TABLE sales.customers (customer_id integer PRIMARY KEY, name text NOT NULL)"))
        rows, order_id = [], 0
        for day, count in ROWS_PER_DAY.items():
            midnight = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
            for i in range(count):
                order_id += 1
                at = midnight + dt.timedelta(seconds=i * 8000 % 86_400)  # i = 0 sits exactly on midnight
                rows.append(
                    {
                        "id": order_id,
                        "c": i % 5 + 1,
                        "at": at,
                        "amount": Decimal(f"{order_id * 3}.{order_id % 100:02d}"),
                        "note": None if i % 3 else f"n{i}",
                        "paid": i % 2 == 0,
                        "tags": ["gift", f"d{i}"] if i % 4 == 0 else None,
                    }
                )
        conn.execute(sa.text("INSERT INTO sales.orders VALUES (:id, :c, :at, :amount, :note, :paid, :tags)"), rows)
        conn.execute(sa.text("INSERT INTO sales.customers SELECT g, 'customer ' || g FROM generate_series(1, 5) g"))
    engine.dispose()
    monkeypatch.setenv("SHOP_DB_PASSWORD", "unused-with-trust-auth")
    connection = f"postgresql+psycopg://postgres:${{SHOP_DB_PASSWORD}}@127.0.0.1:{postgres.port}/{source_db}"
    return {"source": postgres.url(source_db), "warehouse": postgres.url(warehouse_db), "connection": connection}


def source_sql(shop, sql: str) -> list[tuple]:
    engine = sa.create_engine(shop["source"])
    with engine.begin() as conn:
        rows = conn.execute(sa.text(sql)).fetchall() if sql.lstrip().upper().startswith("SELECT") else conn.execute(sa.text(sql)) and []
    engine.dispose()
    return [tuple(r) for r in rows]


PARTITIONS = """SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = '{table}'::regclass ORDER BY 1"""


def test_single_run_backfill_of_three_days_gives_three_partitions(platform, shop):
    defs = platform.configure(source_yaml(shop["connection"]), warehouse_url=shop["warehouse"])

    result = platform.materialize(defs, DAYS[0], DAYS[-1])

    assert result.success
    assert len(platform.instance.get_runs()) == 1
    assert platform.materialized_partitions(["raw", "orders_raw"]) == set(DAYS)
    assert platform.materialized_partitions(["warehouse", "dw", "orders"]) == set(DAYS)
    for day in DAYS:
        manifest = platform.manifest(defs, "raw/orders", day)
        assert manifest["rows"] == ROWS_PER_DAY[day]
        assert len(manifest["files"]) == -(-ROWS_PER_DAY[day] // 7)  # one Parquet part per batch of 7
        event = platform.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["raw", "orders_raw"]), asset_partitions=[day]), limit=1
        ).records[0]
        metadata = event.asset_materialization.metadata
        assert metadata["dagster/row_count"].value == ROWS_PER_DAY[day]
        columns = {c.name: c.type for c in metadata["dagster/column_schema"].value.columns}
        assert (columns["customer_id"], columns["amount"], columns["ordered_at"]) == ("int32", "decimal(12,2)", "timestamp[us, UTC]")
    counts = platform.query(defs, "SELECT _partition, COUNT(*) FROM dw.orders GROUP BY _partition ORDER BY 1")
    assert counts == [(day, ROWS_PER_DAY[day]) for day in DAYS]
    assert platform.query(defs, "SELECT _partition, COUNT(*) FROM dw.customers GROUP BY 1 ORDER BY 1") == [(day, 5) for day in DAYS]


def test_types_and_values_survive_end_to_end(platform, shop):
    defs = platform.configure(source_yaml(shop["connection"]), warehouse_url=shop["warehouse"])
    platform.materialize(defs, DAYS[1])

    columns = dict(
        platform.query(
            defs,
            """
        SELECT column_name, CASE WHEN data_type = 'numeric' THEN format('numeric(%s,%s)', numeric_precision, numeric_scale) ELSE data_type END
        FROM information_schema.columns WHERE table_schema = 'dw' AND table_name = 'orders'""",
        )
    )
    assert columns["order_id"] == "bigint"
    assert columns["customer_id"] == "integer"
    assert columns["amount"] == "numeric(12,2)"
    assert columns["ordered_at"] == "timestamp with time zone"
    assert columns["paid"] == "boolean"
    assert columns["_partition"] == "text"
    assert columns["tags"] == "text"
    assert platform.query(defs, PARTITIONS.format(table="dw.orders")) == [("orders_p20261102", "FOR VALUES IN ('2026-11-02')")]
    assert platform.query(defs, "SELECT tags FROM dw.orders WHERE tags IS NOT NULL ORDER BY order_id LIMIT 1") == [('["gift", "d0"]',)]
    window = "ordered_at >= '2026-11-02T00:00Z' AND ordered_at < '2026-11-03T00:00Z'"
    expected = source_sql(
        shop, f"SELECT COUNT(*), SUM(amount), SUM(order_id), SUM(EXTRACT(EPOCH FROM ordered_at)), COUNT(note) FROM sales.orders WHERE {window}"
    )
    loaded = platform.query(defs, "SELECT COUNT(*), SUM(amount), SUM(order_id), SUM(EXTRACT(EPOCH FROM ordered_at)), COUNT(note) FROM dw.orders")
    assert loaded == expected
    assert expected[0][0] == ROWS_PER_DAY[DAYS[1]]


def test_snapshot_mode_copies_the_whole_table_into_each_partition(platform, shop):
    defs = platform.configure(source_yaml(shop["connection"], orders_mode="snapshot"), warehouse_url=shop["warehouse"])

    platform.materialize(defs, DAYS[0], DAYS[1])

    total = sum(ROWS_PER_DAY.values())
    assert [platform.manifest(defs, "raw/orders", day)["rows"] for day in DAYS[:2]] == [total, total]
    assert platform.query(defs, "SELECT _partition, COUNT(*) FROM dw.orders GROUP BY 1 ORDER BY 1") == [(DAYS[0], total), (DAYS[1], total)]


def test_a_column_added_to_the_source_shows_up_in_the_warehouse(platform, shop):
    defs = platform.configure(source_yaml(shop["connection"]), warehouse_url=shop["warehouse"])
    platform.materialize(defs, DAYS[0], selection=ORDERS_ONLY)

    source_sql(shop, "ALTER TABLE sales.orders ADD COLUMN coupon varchar(20)")
    source_sql(shop, "UPDATE sales.orders SET coupon = 'WELCOME' WHERE ordered_at >= '2026-11-02T00:00Z'")
    result = platform.materialize(defs, DAYS[1], selection=ORDERS_ONLY)

    schema_check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "schema_unchanged")
    assert not schema_check.passed and schema_check.severity == dg.AssetCheckSeverity.WARN
    assert schema_check.partition == DAYS[1] and schema_check.metadata["compared_with"].value == DAYS[0]
    assert schema_check.metadata["diff"].value == {"added": {"coupon": "string"}}

    coupons = platform.query(defs, "SELECT _partition, COUNT(coupon), COUNT(*) FROM dw.orders GROUP BY 1 ORDER BY 1")
    assert coupons == [(DAYS[0], 0, ROWS_PER_DAY[DAYS[0]]), (DAYS[1], ROWS_PER_DAY[DAYS[1]], ROWS_PER_DAY[DAYS[1]])]


def test_source_down_fails_the_run_audits_it_and_changes_nothing(platform, shop, postgres):
    defs = platform.configure(source_yaml(shop["connection"]), warehouse_url=shop["warehouse"])
    platform.materialize(defs, DAYS[0], selection=ORDERS_ONLY)
    manifest_before = platform.manifest(defs, "raw/orders", DAYS[0])
    rows_before = platform.query(defs, "SELECT order_id, _loaded_at FROM dw.orders ORDER BY 1")

    dead = shop["connection"].replace(f":{postgres.port}/", f":{free_port()}/")
    defs = platform.configure(source_yaml(dead, retries="{max_retries: 1, delay_seconds: 0}"), warehouse_url=shop["warehouse"])
    result = platform.materialize(defs, DAYS[0], selection=ORDERS_ONLY, raise_on_error=False)

    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    assert "source 'orders': cannot connect" in str(failure.step_failure_data.error)
    assert platform.manifest(defs, "raw/orders", DAYS[0]) == manifest_before
    assert platform.partition_listing(defs, "raw/orders", DAYS[0]) == sorted(manifest_before["files"] + ["_manifest.json"])
    lake = platform.lake(defs)
    assert lake.fs.find(f"{lake.dataset_dir('raw/orders')}/_staging") == []
    assert platform.query(defs, "SELECT order_id, _loaded_at FROM dw.orders ORDER BY 1") == rows_before
    audit = platform.query(defs, "SELECT run_id, step, status, error_message FROM etl_audit_log ORDER BY id")
    # A refused connection may be a server restarting, so the extract was tried twice, and each attempt audited.
    assert [(step, status) for _, step, status, _ in audit] == [("load", "success"), ("extract", "failure"), ("extract", "failure")]
    assert any(event.event_type_value == "STEP_UP_FOR_RETRY" for event in result.all_events)
    assert audit[-1][0] == result.run_id
    assert "cannot connect" in audit[-1][3] and "unused-with-trust-auth" not in audit[-1][3]


def test_a_failed_load_leaves_the_previous_rows(platform, shop):
    defs = platform.configure(source_yaml(shop["connection"]), warehouse_url=shop["warehouse"])
    platform.materialize(defs, DAYS[2], selection=ORDERS_ONLY)
    before = platform.query(defs, "SELECT order_id, amount, _loaded_at FROM dw.orders ORDER BY 1")
    # The warehouse now refuses one of the partition's rows half-way through the insert.
    platform.query(defs, "ALTER TABLE dw.orders ADD CONSTRAINT no_big_orders CHECK (amount < 150) NOT VALID")

    result = platform.materialize(defs, DAYS[2], selection=ORDERS_ONLY, raise_on_error=False)

    assert not result.success
    assert platform.query(defs, "SELECT order_id, amount, _loaded_at FROM dw.orders ORDER BY 1") == before
    statuses = platform.query(defs, "SELECT step, status, error_message FROM etl_audit_log ORDER BY id")
    assert [s[:2] for s in statuses] == [("load", "success"), ("load", "failure")]
    assert "no_big_orders" in statuses[-1][2]


def test_a_contract_on_a_sql_source_rejects_rows_with_their_record(platform, shop):
    contracted = source_yaml(shop["connection"]).replace(
        "    target: {schema: dw, table: orders}",
        """    target: {schema: dw, table: orders}
    contract:
      extra_columns: keep
      columns:
        order_id: {type: int, required: true}
        amount: {type: "decimal(12,2)", max: 20}
        ordered_at: {type: timestamp, required: true}
    checks: {reject_rate_max: 1.0}""",
        1,
    )
    defs = platform.configure(contracted, warehouse_url=shop["warehouse"])

    result = platform.materialize(defs, DAYS[0], selection=["raw/orders_raw", "rejects/orders_rejects", "warehouse/dw/orders"])

    assert result.success
    expected = source_sql(shop, "SELECT order_id FROM sales.orders WHERE ordered_at < '2026-11-02T00:00Z' AND amount > 20 ORDER BY 1")
    rejects = scan_partition(platform.lake(defs), "rejects/orders", DAYS[0]).collect()
    assert sorted(json.loads(record)["order_id"] for record in rejects["record"]) == [row[0] for row in expected]
    assert rejects["errors"].list.first().struct.field("reason").unique().to_list() == ["max: above 20"]
    loaded = platform.query(defs, "SELECT COUNT(*), MAX(amount) FROM dw.orders")
    assert loaded == [(ROWS_PER_DAY[DAYS[0]] - len(expected), loaded[0][1])] and loaded[0][1] <= 20
    assert len(expected) == 4
    assert "paid" in dict(platform.query(defs, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders'"))


def test_awkward_text_survives_the_bulk_load(platform, postgres):
    source_db, warehouse_db = postgres.create_database("source"), postgres.create_database("warehouse")
    values = [None, "", "\\N", 'comma, "quotes"', "line\nbreak", "tab\tand ünïcødé"]
    engine = sa.create_engine(postgres.url(source_db))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notes (id int PRIMARY KEY, body text)"))
        conn.execute(sa.text("INSERT INTO notes VALUES (:id, :body)"), [{"id": i, "body": v} for i, v in enumerate(values)])
    engine.dispose()
    defs = platform.configure(
        f"""
sources:
  - name: notes
    kind: sql
    connection: {postgres.url(source_db)}
    table: notes
    start_date: 2026-11-01
    target: {{table: notes}}
""",
        warehouse_url=postgres.url(warehouse_db),
    )

    platform.materialize(defs, DAYS[0])

    assert platform.query(defs, "SELECT body FROM notes ORDER BY id") == [(v,) for v in values]
