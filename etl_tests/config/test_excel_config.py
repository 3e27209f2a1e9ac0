"""Job lists as Excel workbooks: the same model and validation as the YAML, errors that name the sheet, the row
and the column, the template generated from the model, conversion both ways, and a run from a workbook."""

import datetime as dt
import subprocess
import sys
from typing import get_args

import dagster as dg
import pytest
from openpyxl import Workbook, load_workbook

from etl_assets.definitions import build_definitions
from etl_assets.demo.shop import ensure_demo_database
from etl_resources.config.excel import columns, write_workbook
from etl_resources.config.sources_file import SourcesConfigError, load_sources
from etl_resources.sources.sql.model import SqlSource
from etl_resources.sources.sql.workbook import LOAD_TYPES
from etl_tests.support.servers import REPO

YAML = """\
sources:
  - name: erp_orders
    kind: sql
    connection: ${erp-connection}
    table: sales.orders
    mode: incremental
    watermark_column: updated_at
    start_date: 2026-01-01
    target: {schema: erp, table: orders, write_mode: merge, keys: [order_id]}
  - name: coins
    kind: rest
    base_url: https://api.example.net
    path: /coins/markets
    auth: {type: api_key, value: "${coingecko-api-key}"}
    start_date: 2026-01-01
    target: {table: coins}
    enabled: false
"""


def etl_config(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "etl_resources.config.cli", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=120)


def workbook(path, header: list[str], rows: list[list]) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "sources"
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)


def test_yaml_to_workbook_and_back_keeps_every_source(tmp_path):
    (tmp_path / "sources.yaml").write_text(YAML)

    assert etl_config("convert", tmp_path / "sources.yaml", tmp_path / "jobs.xlsx").returncode == 0
    assert etl_config("convert", tmp_path / "jobs.xlsx", tmp_path / "back.yaml").returncode == 0

    original = load_sources(tmp_path / "sources.yaml", None)
    assert load_sources(tmp_path / "jobs.xlsx", None) == original == load_sources(tmp_path / "back.yaml", None)
    header = [cell.value for cell in next(load_workbook(tmp_path / "jobs.xlsx")["sources"].iter_rows(max_row=1))]
    assert "connection" not in header and "${" not in (tmp_path / "back.yaml").read_text().split("sources:")[0]


def test_workbook_errors_name_the_sheet_the_row_and_the_column(tmp_path):
    header = ["source_name", "source_type", "table_name", "load_type", "start_date", "write_mode"]
    workbook(
        tmp_path / "jobs.xlsx",
        header,
        [
            ["erp", "postgresql", "orders", "FULL", "2026-01-01", None],
            ["erp", "postgresql", "customers", "DAILY", "2026-01-01", None],
            ["erp", "postgress", "items", "FULL", "2026-13-01", "merge"],
        ],
    )

    with pytest.raises(SourcesConfigError) as caught:
        load_sources(tmp_path / "jobs.xlsx", None)

    message = str(caught.value)
    assert "sheet 'sources', row 3, column 'load_type': 'DAILY' is not one of FULL, INCREMENTAL" in message
    assert "sheet 'sources', row 4, column 'source_type': 'postgress' is not one of postgresql" in message
    assert "sheet 'sources', row 4, column 'start_date': source 'erp_items' (sources[2]), field 'start_date'" in message
    assert "sheet 'sources', row 4, column 'target_table': source 'erp_items' (sources[2]), field 'target': write_mode merge needs `keys`" in message
    assert "row 2" not in message


def test_a_start_date_in_the_future_names_its_cell_and_today(tmp_path):
    today = dt.datetime.now(dt.UTC).date()
    tomorrow = today + dt.timedelta(days=1)
    header = ["source_name", "source_type", "table_name", "start_date", "enabled"]
    workbook(tmp_path / "jobs.xlsx", header, [["erp", "postgresql", "orders", tomorrow, None], ["erp", "postgresql", "items", tomorrow, "N"]])

    with pytest.raises(SourcesConfigError) as caught:
        load_sources(tmp_path / "jobs.xlsx", None)

    problems = str(caught.value).splitlines()[1:]
    assert problems == [
        f"  - sheet 'sources', row 2, column 'start_date': source 'erp_orders' (sources[0]), field 'start_date': {tomorrow} is in the future "
        f"(today, UTC, is {today}), so it has no day to load yet (fix: set start_date to {today} or earlier, or enabled: false until then)"
    ]


def test_a_workbook_with_a_column_it_does_not_know_is_refused_at_the_header(tmp_path):
    workbook(tmp_path / "jobs.xlsx", ["source_name", "source_type", "table_name", "start_date", "password"], [["erp", "postgresql", "o", "2026-01-01", "x"]])

    with pytest.raises(SourcesConfigError, match="sheet 'sources', row 1: unknown column 5 'password'"):
        load_sources(tmp_path / "jobs.xlsx", None)


def test_the_workbooks_choices_are_the_models():
    assert set(LOAD_TYPES.values()) == set(get_args(SqlSource.model_fields["mode"].annotation))


def test_the_shipped_template_is_the_one_the_model_makes(tmp_path):
    write_workbook(tmp_path / "template.xlsx", [])
    shipped, made = load_workbook(REPO / "sources-template.xlsx"), load_workbook(tmp_path / "template.xlsx")

    for name in ("sources", "columns"):
        assert [[c.value for c in row] for row in shipped[name].iter_rows()] == [[c.value for c in row] for row in made[name].iter_rows()]
    assert [c.value for c in next(shipped["sources"].iter_rows(max_row=1))] == [column.name for column in columns()]
    lists = {validation.formula1 for validation in shipped["sources"].data_validations.dataValidation}
    assert {'"FULL,INCREMENTAL"', '"Y,N"', '"replace_partition,merge,append"'} <= lists


def test_the_code_location_runs_from_a_workbook(tmp_path, monkeypatch, instance):
    """The workbook's connection is the secret `shop-connection`, here an environment variable."""
    monkeypatch.chdir(tmp_path)
    database = ensure_demo_database(tmp_path / "shop.db")
    monkeypatch.setenv("SHOP_CONNECTION", f"sqlite:///{database}")
    monkeypatch.setenv("ETL_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    monkeypatch.setenv("ETL_LAKE_URL", str(tmp_path / "lake"))
    workbook(
        tmp_path / "jobs.xlsx",
        ["source_name", "source_type", "table_name", "load_type", "start_date", "target_schema"],
        [["shop", "sqlite", "customers", "FULL", "2026-10-01", "shop"]],
    )
    defs = build_definitions(tmp_path / "jobs.xlsx", str(tmp_path / "secrets.toml"))

    result = dg.materialize(
        list(defs.assets),
        resources=defs.resources,
        instance=instance,
        partition_key="2026-11-01",
        selection=[dg.AssetKey(["raw", "shop_customers_raw"]), dg.AssetKey(["warehouse", "shop", "customers"])],
    )

    assert result.success
    with defs.resources["warehouse"].engine().connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM customers").scalar() > 0
