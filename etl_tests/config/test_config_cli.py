"""`etl-config`: the summary of a good sources file, every error of a bad one with its line, and the JSON
Schema that editors use, checked against the model it is generated from and against real files."""

import json
import subprocess
import sys

import jsonschema
import pytest
import yaml

from etl_assets.demo.shop import DEMO_SOURCES_FILE
from etl_resources.config.cli import SCHEMA_FILE, json_schema, main
from etl_tests.config.test_config import BROKEN_FILES, TODAY, TOMORROW
from etl_tests.support.servers import REPO

BROKEN = """\
sources:
  - name: orders
    kind: sql
    connection: sqlite:///shop.db
    table: orders
    start_date: 2026-11-01
    target: {table: orders, write_mode: merge}
  - name: events
    kind: rest
    base_url: https://api.example.net
    path: /events
    start_date: 2026-11-01
    schedul: "0 1 * * *"
    target: {table: events}
"""


def etl_config(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "etl_resources.config.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_a_good_file_is_summarized_source_by_source():
    result = etl_config("validate", str(DEMO_SOURCES_FILE), "--no-secrets")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("3 source(s) enabled of 3")
    orders = next(line for line in lines if line.startswith("shop_orders"))
    assert "orders (incremental)" in orders and "15 0 * * *" in orders and "shop.orders (replace_partition)" in orders
    assert "reject_rate_max 0.05" in next(line for line in lines if line.startswith("ecom_events"))


def test_a_bad_file_lists_every_error_with_its_line(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text(BROKEN)

    result = etl_config("validate", str(path), "--no-secrets")

    assert result.returncode == 1 and result.stdout == ""
    assert "line 7: source 'orders' (sources[0]), field 'target': write_mode merge needs `keys`" in result.stderr
    assert "line 13: source 'events' (sources[1]), field 'schedul': unknown field" in result.stderr


@pytest.mark.parametrize("case", sorted(BROKEN_FILES))
def test_a_broken_file_gets_the_same_one_line_as_at_load(tmp_path, capsys, case):
    make, expected = BROKEN_FILES[case]
    path = make(tmp_path)

    code = main(["validate", str(path), "--no-secrets"])

    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and str(path.resolve()) in err
    for fragment in expected:
        assert fragment in err


def test_a_start_date_in_the_future_is_named_with_today(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text(BROKEN.replace("write_mode: merge", "write_mode: append").replace("schedul:", "schedule:").replace("2026-11-01", TOMORROW.isoformat(), 1))

    result = etl_config("validate", str(path), "--no-secrets")

    assert result.returncode == 1
    assert f"line 6: source 'orders' (sources[0]), field 'start_date': {TOMORROW} is in the future (today, UTC, is {TODAY})" in result.stderr
    assert "events" not in result.stderr


def test_the_committed_schema_is_the_models():
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()
    assert etl_config("schema").stdout == SCHEMA_FILE.read_text()


def test_the_schema_accepts_the_demo_and_flags_what_an_editor_should(tmp_path):
    schema = json.loads(SCHEMA_FILE.read_text())
    demo = DEMO_SOURCES_FILE.read_text()

    jsonschema.validate(yaml.safe_load(demo.replace("start_date: ", "start_date: !!str ")), schema)
    assert demo.splitlines()[0] == "# yaml-language-server: $schema=../../sources.schema.json"
    assert (DEMO_SOURCES_FILE.parent / "../../sources.schema.json").resolve() == SCHEMA_FILE
    errors = jsonschema.Draft202012Validator(schema).iter_errors(yaml.safe_load(BROKEN.replace("2026-11-01", "'2026-11-01'")))
    assert "'schedul' was unexpected" in jsonschema.exceptions.best_match(errors).message
