"""The write modes, with the same meaning on a real PostgreSQL and on SQLite. Against SQL Server / Azure SQL they
run only when ETL_TEST_MSSQL_URL names one (e.g. `mssql+pyodbc://sa:<password>@host/db?TrustServerCertificate=yes`);
none can run here, so those cases are skipped, and test_mssql_load.py pins the statements Azure SQL gets."""

import polars as pl
import pytest
import sqlalchemy as sa

from etl_resources.config.model import Target
from etl_resources.databases.engines import create_engine
from etl_resources.warehouse.resource import load_partition
from etl_resources.warehouse.write_modes import WriteModeError
from etl_tests.support.mssql_server import drop_tables

DAY_1, DAY_2 = "2026-11-01", "2026-11-02"


@pytest.fixture(params=["sqlite", "postgresql", "mssql"])
def engine(request, tmp_path):
    if request.param == "mssql":
        # The tests name `orders` in the login's default schema: it goes before and after, with its stages.
        engine = create_engine(sa.make_url(request.getfixturevalue("mssql_url")))
        drop_tables(engine, None, "orders")
    elif request.param == "sqlite":
        engine = create_engine(sa.make_url(f"sqlite:///{tmp_path / 'warehouse.db'}"))
    else:
        postgres = request.getfixturevalue("postgres")
        engine = create_engine(sa.make_url(postgres.url(postgres.create_database("modes"))))
    yield engine
    if request.param == "mssql":
        drop_tables(engine, None, "orders")
    engine.dispose()


def day(rows: list[tuple[int, str]], name: str) -> pl.LazyFrame:
    return pl.LazyFrame({"order_id": [r[0] for r in rows], "status": [r[1] for r in rows], "_source_file": [name] * len(rows)})


def table(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text("SELECT order_id, status, _partition FROM orders ORDER BY order_id, _partition"))]


def test_append_adds_every_load_and_removes_nothing(engine):
    load_partition(engine, None, "orders", DAY_1, day([(1, "new"), (2, "new")], "a"), "append")
    load_partition(engine, None, "orders", DAY_1, day([(1, "new")], "b"), "append")
    load_partition(engine, None, "orders", DAY_2, day([(3, "paid")], "c"), "append")

    assert table(engine) == [(1, "new", DAY_1), (1, "new", DAY_1), (2, "new", DAY_1), (3, "paid", DAY_2)]


def test_merge_upserts_on_the_keys_and_the_last_row_of_a_key_wins(engine):
    load_partition(engine, None, "orders", DAY_1, day([(1, "new"), (2, "new"), (3, "new")], "a"), "merge", ("order_id",))

    loaded = load_partition(engine, None, "orders", DAY_2, day([(2, "paid"), (4, "new"), (4, "shipped")], "b"), "merge", ("order_id",))
    load_partition(engine, None, "orders", DAY_2, day([(2, "paid"), (4, "new"), (4, "shipped")], "b"), "merge", ("order_id",))

    assert loaded.rows == 3
    assert table(engine) == [(1, "new", DAY_1), (2, "paid", DAY_2), (3, "new", DAY_1), (4, "shipped", DAY_2)]


def test_a_failed_merge_changes_nothing(engine):
    load_partition(engine, None, "orders", DAY_1, day([(1, "new")], "a"), "merge", ("order_id",))

    # The new column is added and the rows staged, then the upsert fails (lineage may not be null): all must be undone.
    broken = day([(1, "paid")], "b").with_columns(_source_file=pl.lit(None, pl.String), note=pl.lit("x"))
    with pytest.raises(sa.exc.DBAPIError):
        load_partition(engine, None, "orders", DAY_2, broken, "merge", ("order_id",))
    with pytest.raises(WriteModeError, match="merge keys \\['customer_id'\\] are not columns"):
        load_partition(engine, None, "orders", DAY_2, day([(1, "paid")], "b"), "merge", ("customer_id",))

    assert table(engine) == [(1, "new", DAY_1)]
    assert "note" not in [column["name"] for column in sa.inspect(engine).get_columns("orders")]


def test_merge_into_a_day_partitioned_table_is_refused_with_the_fix(postgres):
    engine = sa.create_engine(postgres.url(postgres.create_database("modes")))
    load_partition(engine, None, "orders", DAY_1, day([(1, "new")], "a"))

    with pytest.raises(WriteModeError, match="partitioned by day.*fix: load into a new target table"):
        load_partition(engine, None, "orders", DAY_2, day([(1, "paid")], "b"), "merge", ("order_id",))
    load_partition(engine, None, "orders", DAY_2, day([(2, "new")], "b"), "append")

    assert table(engine) == [(1, "new", DAY_1), (2, "new", DAY_2)]
    engine.dispose()


def test_a_merge_row_without_its_key_fails_naming_the_key_and_changes_nothing(engine):
    load_partition(engine, None, "orders", DAY_1, day([(1, "new")], "a"), "merge", ("order_id",))

    keyless = pl.LazyFrame({"order_id": [2, None], "status": ["paid", "lost"], "_source_file": ["b", "b"]}, schema_overrides={"order_id": pl.Int64})
    with pytest.raises(WriteModeError, match="merge key 'order_id' is NULL in 1 row.*fix: give those rows a key"):
        load_partition(engine, None, "orders", DAY_2, keyless, "merge", ("order_id",))

    assert table(engine) == [(1, "new", DAY_1)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"write_mode": "merge"}, "merge needs `keys`"), ({"keys": ["order_id"]}, "only apply to write_mode merge")],
)
def test_keys_and_merge_go_together(fields, message):
    with pytest.raises(ValueError, match=message):
        Target.model_validate({"table": "orders", **fields})
