"""The audit row of a step that fails: a SQLite source whose table is gone fails its extract, and the run, once."""

import sqlite3

DAY = "2026-11-03"


def sources_yaml(table: str) -> str:
    return f"""
sources:
  - name: orders
    kind: sql
    connection: sqlite:///shop.db
    table: {table}
    mode: snapshot
    start_date: 2026-11-01
    target: {{table: orders}}
    step_retries: {{max_retries: 0}}
"""


def test_an_extract_that_raises_writes_one_failed_audit_row_and_fails_the_run(platform, workdir):
    with sqlite3.connect(workdir / "shop.db") as conn:
        conn.execute("CREATE TABLE orders (order_id INTEGER)")
        conn.execute("INSERT INTO orders VALUES (1)")
    defs = platform.configure(sources_yaml("orders_gone"))

    result = platform.materialize(defs, DAY, selection=["raw/orders_raw"], raise_on_error=False)

    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    error = str(failure.step_failure_data.error)
    assert "orders_gone" in error
    audit = platform.query(
        defs, "SELECT run_id, source_name, partition_key, step, status, rows_loaded, error_message, started_at <= finished_at FROM etl_audit_log"
    )
    assert len(audit) == 1
    run_id, source, partition, step, status, rows, message, ordered = audit[0]
    assert (run_id, source, partition, step, status, rows, ordered) == (result.run_id, "orders", DAY, "extract", "failure", None, 1)
    assert "orders_gone" in message and "source 'orders'" in message
    assert platform.materialized_partitions(["raw", "orders_raw"]) == set()
