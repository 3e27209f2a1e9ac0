"""The live SQL Server tests run whenever ETL_TEST_MSSQL_URL is set, and show as skipped, saying why, only when it
is not. A fixture that dropped the variable (as `workdir` once did) or a test that read it some other way would
otherwise skip, or pass, unseen in every run that was meant to reach a server.

The server is faked: none can run here, and what is under test is the fixtures, not SQL Server. A TCP listener on
127.0.0.1 stands where it would be; the driver connects, sends its PRELOGIN packet (the first packet of TDS), and
the listener hangs up. Every live test must then fail or error, none skip, and the PRELOGINs show the tests took the
variable's URL all the way to the driver. `ConnectRetryCount=0` keeps the driver from trying again; mssql-python's
connection string has no login timeout, and none is needed against a listener that hangs up at once.
"""

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from etl_tests.support.mssql_server import MSSQL_URL_VARIABLE, NO_MSSQL
from etl_tests.support.servers import REPO

TDS_PRELOGIN = 0x12
LIVE_FILES = ["etl_tests/warehouse/test_mssql_live.py", "etl_tests/warehouse/test_write_modes.py", "etl_tests/test_demo.py"]
LIVE_SELECTION = "mssql or real_sql_server"


def functions_in(path: str) -> list[ast.FunctionDef]:
    return [node for node in ast.parse((REPO / path).read_text()).body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]


def live_tests() -> set[str]:
    """The tests that need the server, read from their files so a test added there is counted too: every test of
    the live suite, the mssql case of each write-mode test on the `engine` fixture, and the demo's SQL Server load."""
    write_modes = [node.name for node in functions_in("etl_tests/warehouse/test_write_modes.py") if "engine" in [arg.arg for arg in node.args.args]]
    return {
        *(f"etl_tests.warehouse.test_mssql_live::{node.name}" for node in functions_in("etl_tests/warehouse/test_mssql_live.py")),
        *(f"etl_tests.warehouse.test_write_modes::{name}[mssql]" for name in write_modes),
        "etl_tests.test_demo::test_the_demo_loads_into_a_real_sql_server",
    }


def start_live_suite(report: Path, url: str | None) -> subprocess.Popen:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ETL_")} | {"PYTHONPATH": str(REPO)}
    if url:
        env[MSSQL_URL_VARIABLE] = url
    command = [sys.executable, "-m", "pytest", *LIVE_FILES, "-k", LIVE_SELECTION, "-p", "no:cacheprovider", "-q", f"--junitxml={report}"]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def outcomes(report: Path) -> dict[str, dict[str, str]]:
    """Per test, what junit recorded of it (failure, error, skipped; nothing for a pass) and the message."""
    cases: dict[str, dict[str, str]] = {}
    for case in ET.parse(report).iter("testcase"):
        recorded = cases.setdefault(f"{case.get('classname')}::{case.get('name')}", {})
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                recorded[child.tag] = child.get("message", "")
    return cases


def test_the_live_tests_run_against_the_server_the_variable_names_and_skip_visibly_without_it(tmp_path, fake_sql_server):
    url = f"mssql+mssqlpython://sa:x@127.0.0.1:{fake_sql_server['port']}/etl?TrustServerCertificate=yes&ConnectRetryCount=0"
    with_server = start_live_suite(tmp_path / "with.xml", url)
    without = start_live_suite(tmp_path / "without.xml", None)
    with_output, _ = with_server.communicate(timeout=180)
    without_output, _ = without.communicate(timeout=180)

    expected = live_tests()
    ran = outcomes(tmp_path / "with.xml")
    assert with_server.returncode == 1, with_output[-3000:]
    assert set(ran) == expected, with_output[-3000:]
    assert {name: kinds for name, kinds in ran.items() if "skipped" in kinds or not kinds.keys() & {"failure", "error"}} == {}
    prelogins = [first for first in fake_sql_server["received"] if first[:1] == bytes([TDS_PRELOGIN])]
    assert len(prelogins) >= len(expected), f"{len(prelogins)} PRELOGIN(s) for {len(expected)} live tests"

    skipped = outcomes(tmp_path / "without.xml")
    assert without.returncode == 0, without_output[-3000:]
    assert set(skipped) == expected
    assert {name for name, kinds in skipped.items() if kinds.keys() != {"skipped"} or NO_MSSQL not in kinds["skipped"]} == set()
    # What a person sees at the end of the run: one SKIPPED line per live test, with the reason.
    assert without_output.count(f": {NO_MSSQL}\n") == len(expected), without_output[-3000:]
