"""Names in the warehouse: targets that are one table, names the server would cut, columns that collide, and
column names that must arrive exactly. PostgreSQL and SQLite run for real; SQL Server cannot run here, so its
rules are checked through validation and its T-SQL as compiled by SQLAlchemy's mssql dialect."""

import datetime as dt
import sqlite3
import subprocess
import sys

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from etl_assets.assets import warehouse as warehouse_assets
from etl_resources.config.sources_file import SourcesConfigError, load_sources
from etl_resources.databases.engines import create_engine
from etl_resources.warehouse.dialects.mssql.load import DayLoad, insert_statement, move_statements, stage_for
from etl_resources.warehouse.names import WarehouseNameError, column_clashes, generated, naming
from etl_resources.warehouse.resource import load_partition, replace_partition
from etl_tests.support.servers import REPO

DAY, OTHER_DAY = "2026-11-01", "2026-11-02"
SQLITE = "sqlite:///warehouse.db"
AWKWARD = ["rate%", "a b", "it's", '"q"', "Ünï", "x :y"]


def sources_yaml(connection: str, targets: list[str], query: str = "SELECT 1 AS id") -> str:
    """One SQL source per target (`schema.table`, or `table`, with `|mode` for a write mode other than the default)."""
    entries = []
    for index, spec in enumerate(targets):
        written, _, mode = spec.partition("|")
        schema, _, table = written.rpartition(".")
        target = (
            f"{{table: {table}"
            + (f", schema: {schema}" if schema else "")
            + (f", write_mode: {mode}, keys: [id]" if mode == "merge" else f", write_mode: {mode}" if mode else "")
            + "}"
        )
        entries.append(
            f"  - name: source_{chr(ord('a') + index)}\n    kind: sql\n    connection: {connection}\n    query: '{query}'\n"
            f"    start_date: {DAY}\n    schedule: null\n    target: {target}\n"
        )
    return "sources:\n" + "".join(entries)


@pytest.fixture
def source_db(workdir) -> str:
    path = workdir / "source.db"
    sqlite3.connect(path).close()
    return f"sqlite:///{path}"


def refusal(platform, source_db, targets: list[str], warehouse_url: str) -> str:
    with pytest.raises(SourcesConfigError) as raised:
        platform.configure(sources_yaml(source_db, targets), warehouse_url=warehouse_url)
    return str(raised.value)


def test_two_schemas_of_one_sqlite_table_are_refused_at_definitions_load(platform, source_db):
    message = refusal(platform, source_db, ["sales.orders", "finance.orders"], SQLITE)

    assert "source 'source_b' (sources[1]), field 'target': finance.orders is already the target of sources[0], source 'source_a', as sales.orders" in message
    assert "one table on sqlite (sqlite ignores the schema)" in message and "(fix: give each source its own target table)" in message


def test_the_same_pair_is_two_tables_on_postgresql(platform, source_db, postgres):
    defs = platform.configure(sources_yaml(source_db, ["sales.orders", "finance.orders"]), warehouse_url=postgres.url())

    assert {key.to_user_string() for asset in defs.assets for key in asset.keys} >= {"warehouse/sales/orders", "warehouse/finance/orders"}


@pytest.mark.parametrize(
    "url, refused",
    [(SQLITE, True), ("mssql+pyodbc://@server.database.windows.net/dw", True), ("postgresql+psycopg://u@127.0.0.1/dw", False)],
)
def test_names_that_differ_in_case_are_one_table_where_the_warehouse_ignores_case(workdir, url, refused):
    path = workdir / "sources.yaml"
    path.write_text(sources_yaml("sqlite:///x.db", ["Orders", "orders"]))
    if not refused:
        assert [source.target.table for source in load_sources(path, None, url).sources] == ["Orders", "orders"]
        return
    with pytest.raises(
        SourcesConfigError,
        match=r"orders is already the target of sources\[0\], source 'source_a', as Orders: one table on \w+ \(\w+ compares names without case\)",
    ):
        load_sources(path, None, url)


def test_a_target_named_like_another_targets_day_table_is_refused(platform, source_db, postgres):
    message = refusal(platform, source_db, ["x", "x_p20261101"], postgres.url())

    assert (
        "source 'source_b' (sources[1]), field 'target': x_p20261101 is the name of the day table (x_pYYYYMMDD) that loads of x, "
        "the target of sources[0], source 'source_a', make on postgresql" in message
    )
    assert "(fix: give this source a table name that does not match x_pYYYYMMDD, x_pYYYYMMDD_load)" in message


@pytest.mark.parametrize(
    "targets, generated_name",
    [(["orders|append", "ix_orders__partition"], "index (ix_orders__partition)"), (["orders|merge", "orders__merge"], "merge staging table (orders__merge)")],
)
def test_a_target_named_like_another_targets_index_or_staging_table_is_refused_on_sqlite(platform, source_db, targets, generated_name):
    message = refusal(platform, source_db, targets, SQLITE)

    assert f"source 'source_b' (sources[1]), field 'target': {targets[1]} is the name of the {generated_name}" in message


def test_etl_config_validate_checks_names_against_the_configured_warehouse(workdir, source_db):
    path = workdir / "sources.yaml"
    path.write_text(sources_yaml(source_db, ["sales.orders", "finance.orders"]))
    run = [sys.executable, "-m", "etl_resources.config.cli", "validate", str(path), "--no-secrets"]

    on_sqlite = subprocess.run(run, capture_output=True, text=True, cwd=REPO)
    on_postgres = subprocess.run([*run, "--warehouse-url", "postgresql+psycopg://u@127.0.0.1/dw"], capture_output=True, text=True, cwd=REPO)

    assert on_sqlite.returncode == 1 and "one table on sqlite (sqlite ignores the schema)" in on_sqlite.stderr
    assert on_postgres.returncode == 0, on_postgres.stderr


def test_a_postgresql_target_over_63_bytes_is_refused_naming_the_limit(platform, source_db, postgres):
    message = refusal(platform, source_db, ["x" * 64], postgres.url())

    assert f"source 'source_a' (sources[0]), field 'target': {'x' * 64}: table '{'x' * 64}' is 64 bytes, over postgresql's limit of 63 bytes" in message
    assert "(fix: a table name of at most 63 bytes)" in message


def test_without_a_known_warehouse_every_supported_ones_limit_applies(workdir):
    path = workdir / "sources.yaml"
    path.write_text(sources_yaml("sqlite:///x.db", ["x" * 64]))

    with pytest.raises(SourcesConfigError, match="over postgresql's limit of 63 bytes.*every supported warehouse's rules apply"):
        load_sources(path, None, "${WAREHOUSE_URL}")
    assert load_sources(path, None, SQLITE).sources[0].target.table == "x" * 64


def test_every_name_a_load_makes_fits_for_the_longest_target_postgresql_takes():
    """The day, load, index and staging tables are cut and hashed to fit, so only the target's own length can fail."""
    rules = naming("postgresql")
    for mode in ("replace_partition", "merge", "append"):
        names = generated("postgresql", "x" * 63, mode)
        assert names and all(rules.fits(g.shown.replace("YYYYMMDD", "20261101")) for g in names)


def test_a_long_name_is_refused_before_the_load_touches_postgresql(postgres):
    """A sources file checked without knowing the warehouse must still not reach the server's truncation."""
    engine = create_engine(sa.make_url(postgres.url(postgres.create_database("names"))))
    day = pl.LazyFrame({"id": [1], "_source_file": ["f"]})

    with pytest.raises(WarehouseNameError, match="is 64 bytes, over postgresql's limit of 63 bytes"):
        replace_partition(engine, None, "x" * 64, DAY, day)
    with pytest.raises(WarehouseNameError, match=r"column 'Ü{32}' is 64 bytes"):
        replace_partition(engine, None, "orders", DAY, day.with_columns(pl.lit(1).alias("Ü" * 32)))
    replace_partition(engine, None, "y" * 63, DAY, day)
    replace_partition(engine, None, "y" * 63, OTHER_DAY, day)

    with engine.connect() as conn:
        assert [name for name in sa.inspect(conn).get_table_names() if not name.startswith("y" * 39 + "_")] == ["y" * 63]
        assert conn.execute(sa.text(f"SELECT _partition FROM {'y' * 63} ORDER BY 1")).scalars().all() == [DAY, OTHER_DAY]


def test_the_audit_says_failure_when_the_loaded_table_is_not_found_by_its_name(platform, source_db, monkeypatch):
    """The table is looked up by its name only after the load commits; a lookup that fails must fail the audit too.
    The lookup's failure is injected: with names checked first, no real warehouse here loses a table's name."""
    defs = platform.configure(sources_yaml(source_db, ["orders"]))

    def not_found(engine, schema, table):
        raise sa.exc.NoSuchTableError(table)

    monkeypatch.setattr(warehouse_assets, "table_schema", not_found)
    result = platform.materialize(defs, DAY, raise_on_error=False)

    assert not result.success
    assert platform.query(defs, "SELECT step, status, error_message FROM etl_audit_log WHERE step = 'load'") == [
        ("load", "failure", "NoSuchTableError: orders")
    ]


@pytest.mark.parametrize("warehouse", ["sqlite", "postgresql"])
def test_columns_that_differ_only_in_case(platform, postgres, warehouse):
    """One column on SQLite (and SQL Server): the load fails naming the source, both columns and the fix.
    Two columns on PostgreSQL, which keeps quoted names as written. (The source is PostgreSQL: SQLite renames
    the second column of such a query itself, to `amount:1`.)"""
    url = SQLITE if warehouse == "sqlite" else postgres.url(postgres.create_database("cased"))
    source = postgres.url(postgres.create_database("source"))
    defs = platform.configure(sources_yaml(source, ["orders"], query='SELECT 1 AS "Amount", 2 AS amount'), warehouse_url=url)

    result = platform.materialize(defs, DAY, raise_on_error=False)

    if warehouse == "postgresql":
        assert result.success and platform.query(defs, 'SELECT "Amount", amount FROM orders') == [(1, 2)]
        return
    failure = next(event for event in result.all_events if event.is_step_failure).step_failure_data.error.message
    assert (
        "source 'source_a', 2026-11-01: loading orders: columns 'Amount' and 'amount' are one column on sqlite, which compares column names "
        "without case (fix: rename one of them in the source's query or contract)"
    ) in failure
    assert platform.query(defs, "SELECT status, error_message LIKE '%Amount%' FROM etl_audit_log WHERE step = 'load'") == [("failure", 1)]


def test_a_column_differing_in_case_from_one_the_table_has_is_refused_on_sqlite(workdir):
    engine = create_engine(sa.make_url(SQLITE))
    load_partition(engine, None, "orders", DAY, pl.LazyFrame({"amount": [1], "_source_file": ["f"]}))

    with pytest.raises(WarehouseNameError, match="columns 'amount' and 'Amount' are one column on sqlite"):
        load_partition(engine, None, "orders", OTHER_DAY, pl.LazyFrame({"Amount": [2], "_source_file": ["f"]}))


@pytest.mark.parametrize("mode", ["replace_partition", "merge", "append"])
@pytest.mark.parametrize("warehouse", ["sqlite", "postgresql"])
def test_awkward_column_names_arrive_exactly(workdir, postgres, warehouse, mode):
    """`%`, spaces, quotes, case, non-ASCII letters and a colon (which SQLAlchemy's text() would take for a
    parameter), in a new table and as columns the source grew."""
    url = SQLITE if warehouse == "sqlite" else postgres.url(postgres.create_database("awkward"))
    engine = create_engine(sa.make_url(url))
    keys = ("id",) if mode == "merge" else ()

    def day(number: int, columns: list[str]) -> pl.LazyFrame:
        return pl.LazyFrame({"id": [number], **{name: [f"{name} on {number}"] for name in columns}, "_source_file": ["f"]})

    load_partition(engine, None, "awkward", DAY, day(1, AWKWARD[:1]), mode, keys)
    load_partition(engine, None, "awkward", OTHER_DAY, day(2, AWKWARD), mode, keys)

    with engine.connect() as conn:
        result = conn.execute(sa.text("SELECT * FROM awkward ORDER BY id"))
        names, rows = list(result.keys()), [row._mapping for row in result]
    assert [name for name in names if name in AWKWARD] == AWKWARD
    assert [{name: row[name] for name in AWKWARD} for row in rows][-1] == {name: f"{name} on 2" for name in AWKWARD}
    assert all(row["rate%"] in ("rate% on 1", "rate% on 2") for row in rows)


def test_tsql_keeps_awkward_column_names(workdir):
    """No SQL Server runs here: the DDL, the stage's insert and the merge's statements are compiled with
    SQLAlchemy's mssql dialect."""
    dialect = mssql.dialect()
    table = sa.Table("awkward", sa.MetaData(), sa.Column("id", sa.BigInteger()), *(sa.Column(name, sa.UnicodeText()) for name in [*AWKWARD, "_source_file"]))
    stage = stage_for(table, ["id", *AWKWARD, "_source_file"], "0123456789ab")
    day = DayLoad(table, stage, "2026-11-01", dt.datetime(2026, 11, 1, tzinfo=dt.UTC), "merge", ("id",))

    ddl = str(sa.schema.CreateTable(table).compile(dialect=dialect))
    insert = insert_statement(dialect, stage)
    merge = " ".join(statement for statement, _ in move_statements(dialect, day))

    for name in ("[rate%]", "[a b]", "[it's]", '["q"]', "[Ünï]"):
        assert name in ddl and name in insert and f"{name} = s.{name}" in merge
    assert "%%" not in ddl + insert + merge


def test_which_columns_are_one_on_each_warehouse():
    """Its default collation is case-insensitive; no server runs here, so the rule itself is checked."""
    assert column_clashes("mssql", ["Amount", "amount"]) == [
        "columns 'Amount' and 'amount' are one column on mssql, which compares column names without case "
        "(fix: rename one of them in the source's query or contract)"
    ]
    assert column_clashes("postgresql", ["Amount", "amount"]) == []
    # SQLite folds A-Z only: Ü and ü are two columns there, one on SQL Server.
    assert column_clashes("sqlite", ["Ünï", "ünï"]) == [] and len(column_clashes("mssql", ["Ünï", "ünï"])) == 1


@pytest.mark.parametrize("column, mode", [("_partition", "replace_partition"), ("_Loaded_At", "append"), ("_etl_row", "merge")])
def test_a_source_column_named_like_one_the_load_writes_is_refused(workdir, column, mode):
    """It would be overwritten by the day's lineage (or the merge's row number) without a word."""
    engine = create_engine(sa.make_url(SQLITE))
    day = pl.LazyFrame({"id": [1], column: ["the source's value"], "_source_file": ["f"]})

    with pytest.raises(WarehouseNameError, match=f"column '{column}' is '{column.lower()}', a column the load writes itself"):
        load_partition(engine, None, "orders", DAY, day, mode, ("id",) if mode == "merge" else ())


def test_a_warehouse_url_that_is_one_secret_is_read_for_its_naming_rules(platform, source_db, postgres, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", postgres.url())
    defs = platform.configure(sources_yaml(source_db, ["sales.orders", "finance.orders"]), warehouse_url="${WAREHOUSE_URL}")

    assert {key.to_user_string() for asset in defs.assets for key in asset.keys} >= {"warehouse/sales/orders", "warehouse/finance/orders"}
    monkeypatch.setenv("WAREHOUSE_URL", SQLITE)
    assert "one table on sqlite" in refusal(platform, source_db, ["sales.orders", "finance.orders"], "${WAREHOUSE_URL}")
