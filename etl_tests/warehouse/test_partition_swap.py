"""The partition replace on a real PostgreSQL: swapped day tables, the parent's own rules, and tables made by hand."""

import datetime as dt
import threading
from decimal import Decimal

import polars as pl
import pytest
import sqlalchemy as sa

from etl_resources.warehouse.resource import replace_partition

DAY, OTHER_DAY = "2026-11-01", "2026-11-02"
PARTITIONS = """SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'orders'::regclass ORDER BY 1"""


@pytest.fixture
def engine(postgres) -> sa.Engine:
    engine = sa.create_engine(postgres.url(postgres.create_database("swap")))
    yield engine
    engine.dispose()


def frame(ids: range, files: int = 1, day: str = DAY) -> pl.LazyFrame:
    """A partition as the lake IO manager hands it over: rows with the Parquet file each came from."""
    return pl.LazyFrame(
        {
            "order_id": list(ids),
            "amount": [float(i) for i in ids],
            "_source_file": [f"raw/orders/date={day}/part-20261102T000000-0a1b2c3d-{i % files:05d}.parquet" for i in ids],
        }
    )


def rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql))]


def test_reloading_a_day_swaps_its_partition_and_leaves_the_other_days(engine):
    replace_partition(engine, None, "orders", DAY, frame(range(0, 5)))
    replace_partition(engine, None, "orders", OTHER_DAY, frame(range(100, 103), day=OTHER_DAY))

    loaded = replace_partition(engine, None, "orders", DAY, frame(range(10, 20), files=3))

    assert loaded.rows == 10 and loaded.files == 3
    assert rows(engine, PARTITIONS) == [("orders_p20261101",), ("orders_p20261102",)]
    assert rows(engine, "SELECT _partition, COUNT(*), MIN(order_id) FROM orders GROUP BY 1 ORDER BY 1") == [(DAY, 10, 10), (OTHER_DAY, 3, 100)]
    assert rows(engine, f"SELECT DISTINCT _source_file FROM orders WHERE _partition = '{DAY}'") == [
        (f"raw/orders/date={DAY}/part-20261102T000000-0a1b2c3d-*.parquet",)
    ]
    assert rows(engine, "SELECT COUNT(*) FROM orders WHERE _loaded_at IS NULL OR _source_file IS NULL") == [(0,)]


def test_a_day_with_no_rows_replaces_the_old_ones_with_none(engine):
    replace_partition(engine, None, "orders", DAY, frame(range(0, 5)))

    replace_partition(engine, None, "orders", DAY, frame(range(0, 0)))

    assert rows(engine, "SELECT COUNT(*) FROM orders") == [(0,)]
    assert rows(engine, PARTITIONS) == [("orders_p20261101",)]


def test_the_parents_checks_not_nulls_and_indexes_hold_for_new_days(engine):
    replace_partition(engine, None, "orders", DAY, frame(range(0, 5)))
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE orders ADD CONSTRAINT small_orders CHECK (amount < 100)"))
        conn.execute(sa.text("ALTER TABLE orders ALTER COLUMN order_id SET NOT NULL"))
        conn.execute(sa.text("CREATE INDEX orders_by_id ON orders (order_id)"))

    with pytest.raises(Exception, match="small_orders"):
        replace_partition(engine, None, "orders", DAY, frame(range(98, 102)))
    with pytest.raises(Exception, match="order_id"):
        replace_partition(engine, None, "orders", DAY, frame(range(0, 3)).with_columns(order_id=pl.lit(None, pl.Int64)))
    replace_partition(engine, None, "orders", OTHER_DAY, frame(range(50, 53), day=OTHER_DAY))

    assert rows(engine, "SELECT _partition, COUNT(*) FROM orders GROUP BY 1 ORDER BY 1") == [(DAY, 5), (OTHER_DAY, 3)]
    assert ("orders_p20261102_order_id_idx",) in rows(engine, "SELECT indexname::text FROM pg_indexes WHERE tablename = 'orders_p20261102'")


def test_columns_the_source_grew_or_dropped_line_up_with_the_parent(engine):
    replace_partition(engine, None, "orders", DAY, frame(range(0, 2)))

    grown = replace_partition(engine, None, "orders", OTHER_DAY, frame(range(5, 7), day=OTHER_DAY).with_columns(note=pl.lit("new")))
    replace_partition(engine, None, "orders", DAY, frame(range(0, 2)).drop("amount"))

    assert grown.added_columns == ["note"]
    assert rows(engine, "SELECT _partition, order_id, amount, note FROM orders ORDER BY 1, 2") == [
        (DAY, 0, None, None),
        (DAY, 1, None, None),
        (OTHER_DAY, 5, 5.0, "new"),
        (OTHER_DAY, 6, 6.0, "new"),
    ]


def test_a_table_made_by_hand_is_loaded_by_delete_and_copy(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (order_id bigint, amount double precision, _loaded_at timestamptz, _source_file text, _partition text)"))
        conn.execute(sa.text(f"INSERT INTO orders VALUES (-1, 0, now(), 'old', '{DAY}'), (-2, 0, now(), 'old', '{OTHER_DAY}')"))

    replace_partition(engine, None, "orders", DAY, frame(range(0, 4), files=2))

    assert rows(engine, "SELECT _partition, COUNT(*) FROM orders GROUP BY 1 ORDER BY 1") == [(DAY, 4), (OTHER_DAY, 1)]
    assert len(rows(engine, f"SELECT DISTINCT _source_file FROM orders WHERE _partition = '{DAY}'")) == 2


def test_two_loads_of_one_new_day_at_once_take_turns(engine):
    replace_partition(engine, None, "orders", OTHER_DAY, frame(range(0, 1), day=OTHER_DAY))
    errors: list[BaseException] = []

    def load(ids: range) -> None:
        try:
            replace_partition(engine, None, "orders", DAY, frame(ids, files=4))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=load, args=(range(start, start + 300_000),)) for start in (0, 1_000_000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    ((count, lowest, highest),) = rows(engine, f"SELECT COUNT(*), MIN(order_id), MAX(order_id) FROM orders WHERE _partition = '{DAY}'")
    assert count == 300_000 and highest - lowest == 299_999


def test_hostile_column_names_from_the_source_are_quoted_not_run(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE sentinel (id int)"))
    hostile = 'x"; DROP TABLE sentinel; --'

    replace_partition(engine, None, "orders", DAY, frame(range(0, 3)).with_columns(pl.lit("v").alias(hostile)))
    replace_partition(engine, None, "orders", DAY, frame(range(0, 2)).with_columns(pl.lit("w").alias(hostile)))

    assert rows(engine, "SELECT to_regclass('sentinel') IS NOT NULL") == [(True,)]
    assert rows(engine, 'SELECT DISTINCT "x""; DROP TABLE sentinel; --" FROM orders') == [("w",)]


def test_every_type_the_warehouse_creates_survives_the_binary_copy(engine):
    """Each column type the platform maps to PostgreSQL, with a null in each, read back as loaded."""
    values = {
        "flag": (pl.Boolean, [True, None]),
        "small": (pl.Int16, [-32768, None]),
        "whole": (pl.Int32, [2_147_483_647, None]),
        "big": (pl.Int64, [-9_223_372_036_854_775_808, None]),
        "ratio": (pl.Float32, [0.5, None]),
        "score": (pl.Float64, [1e-300, None]),
        "amount": (pl.Decimal(12, 2), [Decimal("-1234567890.12"), None]),
        "day": (pl.Date, [dt.date(1999, 12, 31), None]),
        "at": (pl.Time, [dt.time(23, 59, 59, 999999), None]),
        "seen": (pl.Datetime("us"), [dt.datetime(1970, 1, 1, 0, 0, 1), None]),
        "seen_utc": (pl.Datetime("us", "UTC"), [dt.datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=dt.UTC), None]),
        "blob": (pl.Binary, [b"\x00\xff", None]),
        "text": (pl.String, ["ünï\tcødé\n\\N", None]),
    }
    loaded = pl.LazyFrame(
        {name: pl.Series(name, data, dtype=dtype) for name, (dtype, data) in values.items()} | {"_source_file": [f"raw/t/date={DAY}/part-0.parquet"] * 2}
    )

    replace_partition(engine, None, "typed", DAY, loaded)

    names = ", ".join(f'"{name}"' for name in values)
    assert rows(engine, f"SELECT {names} FROM typed ORDER BY flag NULLS LAST") == [
        tuple(data[0] for _, data in values.values()),
        (None,) * len(values),
    ]


def test_a_new_day_is_written_once_frozen_and_all_visible(engine):
    """COPY FREEZE: the first query after the load and autovacuum find nothing left to rewrite in the day's pages."""
    replace_partition(engine, None, "orders", DAY, frame(range(0, 50_000)))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_visibility"))

    pages, frozen = rows(engine, "SELECT COUNT(*), COUNT(*) FILTER (WHERE all_visible AND all_frozen) FROM pg_visibility_map('orders_p20261101')")[0]
    assert pages > 10 and frozen == pages


def test_percent_signs_in_names_and_checks_stay_single(engine):
    """The load's SQL goes to psycopg without parameters, so nothing may be written for a parameter step to undo."""
    replace_partition(engine, None, "orders", DAY, frame(range(0, 2)).with_columns(pl.lit("ok").alias("rate%")))
    with engine.begin() as conn:
        conn.execute(sa.text("""ALTER TABLE orders ADD CONSTRAINT no_bad CHECK ("rate%" NOT LIKE '%bad%')"""))

    replace_partition(engine, None, "orders", OTHER_DAY, frame(range(5, 7), day=OTHER_DAY).with_columns(pl.lit("fine").alias("rate%")))
    with pytest.raises(Exception, match="no_bad"):
        replace_partition(engine, None, "orders", DAY, frame(range(0, 1)).with_columns(pl.lit("so bad").alias("rate%")))

    assert rows(engine, "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' AND column_name LIKE 'rate%'") == [("rate%",)]
    assert rows(engine, 'SELECT _partition, "rate%" FROM orders ORDER BY 1, 2') == [(DAY, "ok"), (DAY, "ok"), (OTHER_DAY, "fine"), (OTHER_DAY, "fine")]
