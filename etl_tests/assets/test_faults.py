"""Faults made for real: a run process killed with SIGKILL mid-load and mid-write, a source connection
terminated by the server mid-extract, and the warehouse server stopped when the audit row is due."""

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import psycopg
import pytest
import sqlalchemy as sa

from etl_resources.lake.store import scan_partition
from etl_resources.warehouse.audit import AuditRow
from etl_resources.warehouse.audit_queue import enqueue, replay
from etl_tests.support.servers import postgres_server

DAY = "2026-11-01"
ROWS = 200_000
RAW, WAREHOUSE = "raw/events_raw", "warehouse/events"
RAW_DATASET = "raw/events"  # its folder in the lake
RUN_ONE_STEP = """
import sys
import dagster as dg
from etl_assets.definitions import defs
dg.materialize(list(defs.assets), resources=defs.resources, partition_key=sys.argv[1], selection=[dg.AssetKey.from_user_string(sys.argv[2])])
"""


def events_yaml(connection: str, batch_size: int = 20_000, retries: str = "{max_retries: 0}") -> str:
    return f"""
sources:
  - name: events
    kind: sql
    connection: {connection}
    table: events
    mode: incremental
    watermark_column: created_at
    start_date: {DAY}
    batch_size: {batch_size}
    target: {{table: events}}
    step_retries: {retries}
"""


def dsn(postgres, database: str) -> str:
    return f"host=127.0.0.1 port={postgres.port} user=postgres dbname={database}"


@pytest.fixture
def events_db(postgres) -> str:
    database = postgres.create_database("events")
    with psycopg.connect(dsn(postgres, database), autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE events AS SELECT g AS id, timestamptz '{DAY} 00:00+00' + (g % 86400) * interval '1 second' AS created_at, "
            f"md5(g::text) AS payload FROM generate_series(1, {ROWS}) g"
        )
    return database


def wait_for_backend(postgres, database: str, like: str, seconds: float = 60) -> int:
    """The pid of the first backend of `database` running a statement that matches `like`."""
    deadline = time.monotonic() + seconds
    with psycopg.connect(dsn(postgres, "postgres"), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' AND query ILIKE %s AND pid <> pg_backend_pid()",
                (database, like),
            ).fetchone()
            if row:
                return row[0]
            time.sleep(0.005)
        seen = conn.execute("SELECT state, query FROM pg_stat_activity WHERE datname = %s", (database,)).fetchall()
    raise AssertionError(f"no backend of {database} ran {like} within {seconds}s; saw {seen}")


def wait_until_gone(postgres, pid: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    with psycopg.connect(dsn(postgres, "postgres"), autocommit=True) as conn:
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} outlived its killed client"
            time.sleep(0.05)


def run_in_subprocess(workdir: Path, asset: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUN_ONE_STEP, DAY, asset], cwd=workdir, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def test_a_load_killed_mid_copy_leaves_the_days_previous_rows(platform, postgres, events_db, workdir):
    warehouse_db = postgres.create_database("warehouse")
    defs = platform.configure(events_yaml(postgres.url(events_db)), warehouse_url=postgres.url(warehouse_db))
    platform.materialize(defs, DAY, selection=[RAW, WAREHOUSE])
    before = platform.query(defs, "SELECT COUNT(*), SUM(id), MIN(_loaded_at), MAX(_loaded_at) FROM events")

    load = run_in_subprocess(workdir, WAREHOUSE)
    try:
        backend = wait_for_backend(postgres, warehouse_db, "COPY%", seconds=30)
    except AssertionError as err:
        load.kill()
        raise AssertionError(f"{err}; the load's stderr: {load.communicate()[1].decode()[-3000:]}") from None
    load.kill()
    load.wait()
    wait_until_gone(postgres, backend)

    assert load.returncode == -9
    assert platform.query(defs, "SELECT COUNT(*), SUM(id), MIN(_loaded_at), MAX(_loaded_at) FROM events") == before
    assert platform.query(defs, "SELECT relname::text FROM pg_class WHERE relname LIKE 'events%' AND relkind IN ('r', 'p') ORDER BY 1") == [
        ("events",),
        ("events_p20261101",),
    ]
    assert platform.materialize(defs, DAY, selection=[WAREHOUSE]).success
    ((count, ids, loaded_from, _loaded_to),) = platform.query(defs, "SELECT COUNT(*), SUM(id), MIN(_loaded_at), MAX(_loaded_at) FROM events")
    assert (count, ids) == before[0][:2] and loaded_from > before[0][3]


def test_a_source_connection_dropped_mid_extract_is_retried_without_duplicates(platform, postgres, events_db):
    defs = platform.configure(events_yaml(postgres.url(events_db), batch_size=2_000, retries="{max_retries: 2, delay_seconds: 0}"))
    terminated: list[int] = []

    def drop_the_extracts_connection() -> None:
        pid = wait_for_backend(postgres, events_db, "%FROM%events%")
        with psycopg.connect(dsn(postgres, "postgres"), autocommit=True) as conn:
            terminated.append(conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] and pid)

    killer = threading.Thread(target=drop_the_extracts_connection)
    killer.start()
    result = platform.materialize(defs, DAY, selection=[RAW, WAREHOUSE])
    killer.join()

    assert terminated and result.success
    retried = [event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"]
    assert [event.step_key for event in retried] == ["extract_events"]
    frame = scan_partition(platform.lake(defs), RAW_DATASET, DAY).collect()
    assert (frame.height, frame["id"].n_unique(), frame["id"].cast(pl.Int64).sum()) == (ROWS, ROWS, ROWS * (ROWS + 1) // 2)
    assert platform.query(defs, "SELECT COUNT(*), COUNT(DISTINCT id) FROM events") == [(ROWS, ROWS)]
    audit = platform.query(defs, "SELECT step, status, error_message FROM etl_audit_log ORDER BY id")
    assert [row[:2] for row in audit] == [("extract", "failure"), ("load", "success")]
    # libpq words the dropped connection either way, depending on whether the server's notice arrives first.
    assert "source 'events': extract query failed" in audit[0][2]
    assert "terminating connection" in audit[0][2] or "closed the connection" in audit[0][2]


def test_a_lake_write_killed_mid_way_leaves_the_previous_partition(platform, postgres, events_db, workdir):
    defs = platform.configure(events_yaml(postgres.url(events_db), batch_size=1_000))
    platform.materialize(defs, DAY, selection=[RAW])
    lake = platform.lake(defs)
    manifest = platform.manifest(defs, RAW_DATASET, DAY)

    write = run_in_subprocess(workdir, RAW)
    staging = Path(lake.dataset_dir(RAW_DATASET)) / "_staging"
    deadline = time.monotonic() + 60
    while not list(staging.rglob("part-00010.parquet")):
        assert time.monotonic() < deadline and write.poll() is None, "the write never got under way"
        time.sleep(0.005)
    write.kill()
    write.wait()

    assert platform.manifest(defs, RAW_DATASET, DAY) == manifest
    assert platform.partition_listing(defs, RAW_DATASET, DAY) == sorted(manifest["files"] + ["_manifest.json"])
    assert scan_partition(lake, RAW_DATASET, DAY).select("id").collect().height == ROWS
    assert platform.materialize(defs, DAY, selection=[RAW]).success
    assert platform.manifest(defs, RAW_DATASET, DAY)["write_id"] != manifest["write_id"]
    assert list(staging.rglob("*.parquet")) == []  # the killed write's parts went with the next write


def test_audit_rows_wait_while_the_warehouse_is_down_and_go_in_with_the_next_run(platform, postgres, events_db, workdir):
    with postgres_server() as warehouse:
        warehouse_db = warehouse.create_database("warehouse")
        defs = platform.configure(events_yaml(postgres.url(events_db)), warehouse_url=warehouse.url(warehouse_db))
        platform.materialize(defs, DAY, selection=[RAW])

        warehouse.stop()
        failed = platform.materialize(defs, DAY, selection=[WAREHOUSE], raise_on_error=False)
        queued = sorted((workdir / ".etl/audit-queue").glob("*.json"))
        warehouse.start()
        loaded = platform.materialize(defs, DAY, selection=[WAREHOUSE])

        assert not failed.success and loaded.success
        assert len(queued) == 1
        audit = platform.query(defs, "SELECT run_id, step, status FROM etl_audit_log ORDER BY id")
        assert audit == [(failed.run_id, "load", "failure"), (loaded.run_id, "load", "success")]
        assert list((workdir / ".etl/audit-queue").iterdir()) == []
        warnings = [e.message for e in platform.instance.all_logs(failed.run_id) if "kept it in" in (e.message or "")]
        assert len(warnings) == 1 and str(queued[0]) in warnings[0]


def test_an_unreadable_queued_row_is_set_aside_and_holds_back_nothing(tmp_path):
    """The queue on its own, against a SQLite warehouse: one good row, one file cut short by a full disk."""
    queue = tmp_path / "queue"
    now = dt.datetime.now(dt.UTC)
    enqueue(queue, AuditRow("run-1", "job", "orders", "sqlite", "orders", DAY, "load", "failure", now, now, error_message="down"))
    (queue / "20261101T000000000000-cut.json").write_text('{"run_id": "run-2", "pipeli')
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")

    assert replay(engine, queue) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT run_id, status FROM etl_audit_log")).all() == [("run-1", "failure")]
    assert sorted(path.name for path in queue.iterdir()) == ["20261101T000000000000-cut.json.unreadable"]
