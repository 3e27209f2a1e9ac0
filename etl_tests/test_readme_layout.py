"""The README's repository layout table names every module of the code location, and only paths that exist."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("etl_assets", "etl_resources")


def layout_paths() -> list[str]:
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Repository layout", 1)[1].split("\n## ", 1)[0]
    return [path for row in table.splitlines() if row.startswith("| `") for path in re.findall(r"`([^`]+)`", row.split(" | ")[0])]


def test_every_path_in_the_layout_table_exists():
    missing = [path for path in layout_paths() if not (REPO / path).exists()]
    assert missing == [], f"the README's layout table names paths that are gone: {missing} (fix: update the table)"


def test_every_module_is_in_the_layout_table():
    listed = layout_paths()
    modules = sorted(str(path.relative_to(REPO)) for package in PACKAGES for path in (REPO / package).rglob("*.py") if path.name != "__init__.py")
    unlisted = [module for module in modules if not any(module == path or (path.endswith("/") and module.startswith(path)) for path in listed)]
    assert unlisted == [], f"modules the README's layout table does not name: {unlisted} (fix: add each, or its folder, to the table)"
