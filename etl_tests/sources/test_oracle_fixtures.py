"""The live Oracle tests run whenever ETL_TEST_ORACLE_URL is set, and show as skipped, saying why, only when it is
not. A fixture that dropped the variable, or a test that read it some other way, would otherwise skip, or pass,
unseen in every run that was meant to reach a database.

The database is faked: none can run here, and what is under test is the fixtures, not Oracle. The conftest's TCP
listener on 127.0.0.1 (`fake_sql_server`, which keeps the first bytes of each connection whatever the protocol)
stands where it would be; python-oracledb's thin mode connects, sends its TNS CONNECT packet (packet type 1, the
fifth byte of the header), and the listener hangs up. Every live test must then fail or error, none skip, and the
CONNECT packets show the tests took the variable's URL all the way to the driver."""

import ast
import os
import subprocess
import sys
from pathlib import Path

from etl_tests.support.oracle_server import NO_ORACLE, ORACLE_URL_VARIABLE
from etl_tests.support.servers import REPO
from etl_tests.warehouse.test_mssql_fixtures import outcomes

TNS_CONNECT = 0x01
LIVE_FILE = "etl_tests/sources/test_oracle_live.py"


def live_tests() -> set[str]:
    """Every test of the live file, read from it so a test added there is counted too."""
    tree = ast.parse((REPO / LIVE_FILE).read_text())
    return {f"etl_tests.sources.test_oracle_live::{node.name}" for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def start_live_suite(report: Path, url: str | None) -> subprocess.Popen:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ETL_")} | {"PYTHONPATH": str(REPO)}
    if url:
        env[ORACLE_URL_VARIABLE] = url
    command = [sys.executable, "-m", "pytest", LIVE_FILE, "-p", "no:cacheprovider", "-q", "-rs", f"--junitxml={report}"]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_the_live_oracle_tests_run_against_the_database_the_variable_names_and_skip_visibly_without_it(tmp_path, fake_sql_server):
    url = f"oracle+oracledb://etl:x@127.0.0.1:{fake_sql_server['port']}/?service_name=FREEPDB1"
    with_database = start_live_suite(tmp_path / "with.xml", url)
    without = start_live_suite(tmp_path / "without.xml", None)
    with_output, _ = with_database.communicate(timeout=180)
    without_output, _ = without.communicate(timeout=180)

    expected = live_tests()
    ran = outcomes(tmp_path / "with.xml")
    assert with_database.returncode == 1, with_output[-3000:]
    assert set(ran) == expected, with_output[-3000:]
    assert {name: kinds for name, kinds in ran.items() if "skipped" in kinds or not kinds.keys() & {"failure", "error"}} == {}
    assert "DPY-6005: cannot connect to database" in with_output, with_output[-3000:]
    connects = [first for first in fake_sql_server["received"] if first[4:5] == bytes([TNS_CONNECT])]
    assert len(connects) >= len(expected), f"{len(connects)} TNS CONNECT(s) for {len(expected)} live tests"

    skipped = outcomes(tmp_path / "without.xml")
    assert without.returncode == 0, without_output[-3000:]
    assert set(skipped) == expected
    assert {name for name, kinds in skipped.items() if kinds.keys() != {"skipped"} or NO_ORACLE not in kinds["skipped"]} == set()
    # What a person sees at the end of the run: one SKIPPED line per live test, with the reason.
    assert without_output.count(f": {NO_ORACLE}\n") == len(expected), without_output[-3000:]
