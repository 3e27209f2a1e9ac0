"""Incremental MariaDB sources take exactly the rows of each day, against a real MariaDB whose server or session
time zone is not UTC. DATETIME holds a wall-clock time; TIMESTAMP holds an instant in UTC and shows it in the
session's time zone, so a source session left in +05:00 would both read its values five hours late and compare
them with the window bounds in +05:00. The rows sit on the edges of the days (00:00:00.000000 of a day and of the
next, a microsecond either side), one day has none, and four days run as one backfill; lake and warehouse are
compared cell by cell with the source as pymysql reads it in UTC."""

import datetime as dt
from urllib.parse import quote

import pymysql
import pytest
import sqlalchemy as sa

from etl_resources.lake.store import scan_partition
from etl_tests.support.sql_sources import incremental_yaml

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
EMPTY_DAY = "2026-11-03"
EDGES = [
    "2026-10-31 23:59:59.999999",
    "2026-11-01 00:00:00.000000",
    "2026-11-01 12:34:56.789012",
    "2026-11-01 23:59:59.999999",
    "2026-11-02 00:00:00.000000",
    "2026-11-02 00:00:00.000001",
    "2026-11-02 23:59:59.999999",
    "2026-11-04 00:00:00.000000",
    "2026-11-04 23:59:59.999999",
    "2026-11-05 00:00:00.000000",
]
SOURCES = {"by_datetime": "at", "by_timestamp": "at_ts", "by_query": "at_ts"}


def sources_yaml(connection: str) -> str:
    tables = {name: f"table: events\n    watermark_column: {column}" for name, column in SOURCES.items() if name != "by_query"}
    tables["by_query"] = "query: SELECT id, at, at_ts, note FROM events\n    watermark_column: at_ts"
    return incremental_yaml(connection, tables, DAYS[0])


@pytest.fixture
def events(mariadb) -> dict:
    """The rows, written and read back in a UTC session, so each TIMESTAMP is the instant its text says."""
    database = mariadb.create_database("windows")
    connect = {"host": "127.0.0.1", "port": mariadb.port, "user": "root", "database": database, "autocommit": True}
    with pymysql.connect(**connect) as conn, conn.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00'")
        cursor.execute("CREATE TABLE events (id INT PRIMARY KEY, at DATETIME(6), at_ts TIMESTAMP(6) NULL, note VARCHAR(40))")
        rows = [(i, edge, edge, f"row {i} ✓") for i, edge in enumerate(EDGES, start=1)] + [(len(EDGES) + 1, None, None, "no watermark")]
        cursor.executemany("INSERT INTO events VALUES (%s, %s, %s, %s)", rows)
        cursor.execute("SELECT id, at, at_ts, note FROM events ORDER BY id")
        names = [column[0] for column in cursor.description]
        source_rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return {"database": database, "rows": source_rows}


@pytest.fixture
def server_in_plus_five(mariadb):
    """The server's default zone for new sessions: +05:00, restored afterwards (the server serves other tests)."""
    with pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("SET GLOBAL time_zone = '+05:00'")
    yield "+05:00"
    with pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("SET GLOBAL time_zone = 'SYSTEM'")


def of_day(rows: list[dict], column: str, day: str) -> list[dict]:
    start = dt.datetime.fromisoformat(day)
    return [row for row in rows if row[column] is not None and start <= row[column] < start + dt.timedelta(days=1)]


def session_zone(url: str) -> tuple[str, dt.datetime]:
    """What a plain session of this URL sees: its zone, and the first row's TIMESTAMP as it shows it."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        zone = conn.exec_driver_sql("SELECT @@session.time_zone").scalar()
        shown = conn.exec_driver_sql("SELECT at_ts FROM events WHERE id = 1").scalar()
    engine.dispose()
    return zone, shown


def assert_days(platform, defs, warehouse, source_rows: list[dict]) -> None:
    lake = platform.lake(defs)
    problems = []
    for name, column in SOURCES.items():
        loaded = platform.query(defs, f"SELECT _partition, id, at, at_ts, note FROM dw.{name} ORDER BY _partition, id")
        want_loaded = []
        for day in DAYS:
            want = of_day(source_rows, column, day)
            got = scan_partition(lake, f"raw/{name}", day).collect().sort("id").select("id", "at", "at_ts", "note").to_dicts()
            problems += [f"lake {name} {day}: source {w}, lake {g}" for w, g in zip(want, got, strict=False) if w != g]
            if len(want) != len(got):
                problems.append(f"lake {name} {day}: {len(got)} rows, the day has {len(want)}: {[row['id'] for row in got]}")
            want_loaded += [(day, row["id"], row["at"], row["at_ts"], row["note"]) for row in want]
        if loaded != want_loaded:
            problems.append(f"warehouse {name}: {loaded} != {want_loaded}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("zone", ["server", "session"])
def test_incremental_windows_take_exactly_each_days_rows_whatever_the_time_zone(platform, mariadb, postgres, events, zone, request):
    url = mariadb.url(events["database"])
    if zone == "server":
        request.getfixturevalue("server_in_plus_five")
        expected_zone = "+05:00"
    else:
        url += "&init_command=" + quote("SET time_zone = '-08:00'")
        expected_zone = "-08:00"
    first = events["rows"][0]["at_ts"]
    # The trap is armed: a session of this URL, left as it is, shows the instants in another zone.
    assert session_zone(url) == (expected_zone, first + (dt.timedelta(hours=5) if zone == "server" else -dt.timedelta(hours=8)))
    warehouse = postgres.url(postgres.create_database("warehouse"))
    defs = platform.configure(sources_yaml(url), warehouse_url=warehouse)

    assert platform.materialize(defs, DAYS[0], DAYS[-1]).success

    assert of_day(events["rows"], "at", EMPTY_DAY) == []
    assert [row["id"] for row in of_day(events["rows"], "at", "2026-11-01")] == [2, 3, 4]
    assert assert_days(platform, defs, warehouse, events["rows"]) is None


def test_a_one_day_run_takes_that_day_alone(platform, mariadb, postgres, events, server_in_plus_five):
    warehouse = postgres.url(postgres.create_database("warehouse"))
    defs = platform.configure(sources_yaml(mariadb.url(events["database"])), warehouse_url=warehouse)

    assert platform.materialize(defs, "2026-11-02").success

    day = [dt.datetime(2026, 11, 2), dt.datetime(2026, 11, 2, 0, 0, 0, 1), dt.datetime(2026, 11, 2, 23, 59, 59, 999999)]
    for name in SOURCES:
        assert platform.query(defs, f"SELECT _partition, id, at, at_ts FROM dw.{name} ORDER BY id") == [
            ("2026-11-02", i, at, at) for i, at in zip([5, 6, 7], day, strict=True)
        ], name
        assert platform.materialized_partitions(["raw", f"{name}_raw"]) == {"2026-11-02"}
