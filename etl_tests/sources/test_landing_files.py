"""File drops (`kind: files`): the landing sensor turns each new file into a run for the day its name says,
once, on a local folder and in an Azurite container; malformed rows become rejects, never a crash.

The sensor runs through `build_sensor_context` against a real instance; a daemon restart is a fresh
context that gets only the cursor the previous tick stored."""

import datetime as dt
import io
import json
import textwrap

import dagster as dg
import polars as pl

from etl_resources.lake.store import scan_partition
from etl_tests.support.servers import AZURITE_KEY

SOURCES = """
sources:
  - name: partner_orders
    kind: files
    landing: {landing}
    pattern: "orders_*"
    start_date: 2026-11-01
    target: {{table: partner_orders}}
    contract:
      columns:
        order_id: {{type: int, required: true}}
        amount: {{type: "decimal(10,2)", min: 0}}
        ordered_at: {{type: timestamp, required: true}}
      keys: [order_id]
    checks: {{reject_rate_max: 0.4, schema_change: false}}
"""
SENSOR = "partner_orders_landing"
JOB = "partner_orders_daily"
CSV_20 = """order_id,amount,ordered_at
1,10.50,2026-11-20T08:00:00Z
2,-5,2026-11-20T09:00:00Z
3,7.25,2026-11-20T10:00:00Z
"""
JSONL_21 = """{"order_id": 4, "amount": 3.5, "ordered_at": "2026-11-21T08:00:00Z"}
{"order_id": 5, "amount": 12, "ordered_at": "2026-11-21 09:30:00"
{"order_id": 6, "amount": 1.25, "ordered_at": "2026-11-21T10:00:00Z"}
"""


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None, sensor: str = SENSOR):
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources) as context:
        result = defs.resolve_sensor_def(sensor).evaluate_tick(context)
    return list(result.run_requests or []), result.cursor


def run(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest):
    return defs.resolve_job_def(JOB).execute_in_process(partition_key=request.partition_key, tags=request.tags, instance=instance, raise_on_error=False)


def loaded(platform, defs) -> dict[str, list[int]]:
    rows = platform.query(defs, "SELECT _partition, order_id FROM partner_orders ORDER BY 1, 2")
    return {day: [order for d, order in rows if d == day] for day in sorted({d for d, _ in rows})}


def test_each_landing_file_is_loaded_once_for_its_day(platform, workdir):
    landing = workdir / "landing"
    landing.mkdir()
    defs = platform.configure(SOURCES.format(landing=landing))
    (landing / "orders_2026-11-20.csv").write_text(CSV_20)
    (landing / "orders_2026-11-21.jsonl").write_text(JSONL_21)
    (landing / "orders_latest.csv").write_text(CSV_20)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    (landing / f"orders_{today}.csv").write_text(CSV_20)

    requests, cursor = tick(defs, platform.instance, None)

    assert [r.partition_key for r in requests] == ["2026-11-20", "2026-11-21"]
    assert all(run(defs, platform.instance, r).success for r in requests)
    assert loaded(platform, defs) == {"2026-11-20": [1, 3], "2026-11-21": [4, 6]}
    rejects = scan_partition(platform.lake(defs), "rejects/partner_orders", "2026-11-21").collect()
    assert rejects["errors"].to_list() == [
        [
            {"field": "(record)", "reason": "jsonl: orders_2026-11-21.jsonl line 2 is not JSON: Expecting ',' delimiter"},
            {"field": "order_id", "reason": "required: the value is missing"},
            {"field": "ordered_at", "reason": "required: the value is missing"},
        ]
    ]
    assert rejects["record"].to_list() == [JSONL_21.splitlines()[1]]
    # Today's file waits for its day to close; the undated one is skipped for good.
    assert f"orders_{today}.csv" not in json.loads(cursor) and "orders_latest.csv" in json.loads(cursor)

    assert tick(defs, platform.instance, cursor)[0] == []
    restarted_requests, cursor = tick(defs, platform.instance, cursor)
    assert restarted_requests == []

    (landing / "orders_2026-11-20_late.csv").write_text("order_id,amount,ordered_at\n7,1.00,2026-11-20T23:00:00Z\n")
    (landing / "orders_2026-11-19.csv").write_text("order_id,amount,ordered_at\n")
    (landing / "orders_2026-11-21.jsonl").write_text(JSONL_21.replace('"2026-11-21 09:30:00"', '"2026-11-21 09:30:00"}'))
    requests, cursor = tick(defs, platform.instance, cursor)

    assert [(r.partition_key, r.tags["etl/landing_files"]) for r in requests] == [
        ("2026-11-19", "orders_2026-11-19.csv"),
        ("2026-11-20", "orders_2026-11-20_late.csv"),
        ("2026-11-21", "orders_2026-11-21.jsonl"),
    ]
    assert all(run(defs, platform.instance, r).success for r in requests)
    assert platform.manifest(defs, "raw/partner_orders", "2026-11-19")["rows"] == 0  # a header-only file is an empty day
    assert loaded(platform, defs) == {"2026-11-20": [1, 3, 7], "2026-11-21": [4, 5, 6]}
    assert tick(defs, platform.instance, cursor)[0] == []


def test_a_mostly_malformed_file_fails_the_reject_check_and_is_not_loaded(platform, workdir):
    landing = workdir / "landing"
    landing.mkdir()
    defs = platform.configure(SOURCES.format(landing=landing))
    (landing / "orders_2026-11-19.csv").write_text(
        textwrap.dedent("""\
        order_id,amount,ordered_at
        1,10.50,2026-11-19T08:00:00Z
        2,3.00,2026-11-19T08:00:00Z,extra
        3;4.00;2026-11-19T08:00:00Z
        """)
    )

    [request], _ = tick(defs, platform.instance, None)
    result = run(defs, platform.instance, request)

    assert not result.success
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "reject_rate"]
    assert not check.passed
    reasons = [e[0]["reason"] for e in scan_partition(platform.lake(defs), "rejects/partner_orders", "2026-11-19").collect()["errors"].to_list()]
    assert reasons == ["csv: orders_2026-11-19.csv line 3 has 4 fields, the header 3", "csv: orders_2026-11-19.csv line 4 has 1 fields, the header 3"]
    assert platform.query(defs, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'partner_orders'") == [(0,)]


def test_files_dropped_into_an_adls_container_are_picked_up(platform, azurite, container):
    landing = f"abfss://{container.container_name}@devstoreaccount1.dfs.core.windows.net/landing/partners"
    defs = platform.configure(
        SOURCES.format(landing=landing),
        lake_url=azurite.lake_url(container.container_name, "bronze"),
        lake_account_key=AZURITE_KEY,
        lake_endpoint=azurite.endpoint,
    )
    parquet = io.BytesIO()
    pl.DataFrame({"order_id": [8, 9], "amount": [1.5, 2.5], "ordered_at": ["2026-11-18T01:00:00Z", "2026-11-18T02:00:00Z"]}).write_parquet(parquet)
    container.upload_blob("landing/partners/orders_2026-11-18.parquet", parquet.getvalue())

    [request], _ = tick(defs, platform.instance, None)

    assert request.partition_key == "2026-11-18"
    assert run(defs, platform.instance, request).success
    assert loaded(platform, defs) == {"2026-11-18": [8, 9]}


def test_a_contract_of_plain_text_columns_keeps_every_row(platform, workdir):
    """Nothing in such a contract can fail, so every row passes. A Parquet drop has no parse-error column,
    so this contract has no rule at all (which once crashed polars with an empty fold)."""
    landing = workdir / "landing"
    landing.mkdir()
    defs = platform.configure(
        textwrap.dedent("""
        sources:
          - name: notes
            kind: files
            landing: {landing}
            start_date: 2026-11-01
            target: {{table: notes}}
            contract: {{columns: {{author: {{}}, text: {{}}}}}}
    """).format(landing=landing)
    )
    pl.DataFrame({"author": ["ana", None], "text": ["hello", None]}).write_parquet(landing / "notes_2026-11-17.parquet")

    [request], _ = tick(defs, platform.instance, None, sensor="notes_landing")
    result = defs.resolve_job_def("notes_daily").execute_in_process(partition_key=request.partition_key, instance=platform.instance)

    assert result.success
    assert platform.query(defs, "SELECT author, text FROM notes ORDER BY author") == [(None, None), ("ana", "hello")]
