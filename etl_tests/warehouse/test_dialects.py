"""The warehouse dialect switch: each supported warehouse's rules, a refused unsupported one, and no dialect names compared elsewhere."""

import re
from pathlib import Path

import pytest

from etl_resources.config.sources_file import SourcesConfigError
from etl_resources.warehouse.dialects import SUPPORTED, UnsupportedWarehouseError, for_dialect
from etl_tests.support.servers import REPO

SOURCES = """
sources:
  - name: orders
    kind: sql
    connection: "sqlite:///{db}"
    query: "SELECT 1 AS id"
    target: {{table: orders}}
    start_date: "2026-11-01"
"""


@pytest.mark.parametrize(
    ("name", "display", "limit", "has_schemas", "add_column"),
    [("postgresql", "PostgreSQL", 63, True, "ADD COLUMN"), ("mssql", "SQL Server", 128, True, "ADD"), ("sqlite", "SQLite", None, False, "ADD COLUMN")],
)
def test_each_supported_warehouse_has_its_naming_rules(name, display, limit, has_schemas, add_column):
    dialect = for_dialect(name)
    assert (dialect.name, dialect.display_name, dialect.naming.dialect) == (name, display, name)
    assert (dialect.naming.limit, dialect.naming.has_schemas, dialect.add_column) == (limit, has_schemas, add_column)
    assert SUPPORTED == ("postgresql", "mssql", "sqlite")


@pytest.mark.parametrize("url", ["oracle+oracledb://u:secret@db.example/ORCL", "duckdb:///warehouse.duckdb"])
def test_an_unsupported_warehouse_url_fails_when_the_definitions_load(platform, workdir, url):
    """Before, the definitions loaded and the first load failed (or, on Oracle, ran without any of the checks)."""
    with pytest.raises(SourcesConfigError) as raised:
        platform.configure(SOURCES.format(db=workdir / "source.db"), warehouse_url=url)
    message = str(raised.value)
    dialect = url.split(":")[0].split("+")[0]
    assert f"the warehouse URL's dialect '{dialect}' is not a supported warehouse; supported: postgresql, mssql, sqlite" in message
    assert "fix: point ETL_WAREHOUSE_URL" in message
    assert "secret" not in message


def test_for_dialect_names_the_fix_for_an_unsupported_backend():
    with pytest.raises(UnsupportedWarehouseError, match=r"'duckdb' is not a supported warehouse.*\(fix: point ETL_WAREHOUSE_URL"):
        for_dialect("duckdb")


def test_no_warehouse_module_outside_dialects_compares_dialect_names():
    """Extension points are registries: a new warehouse is one module in dialects/ and one entry in its switch."""
    name = r"(dialect\.name|get_backend_name\(\))"
    compared = re.compile(rf"""{name}\s*(==|!=|\bin\b)|(==|!=)\s*{name}|["'](mssql|postgresql|sqlite)["']""")
    root = Path(REPO) / "etl_resources" / "warehouse"
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        if "dialects" not in path.relative_to(root).parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if compared.search(line)
    ]
    assert found == []
