"""The opt-in live tests of Kafka, MongoDB and Google Sheets run, not skip, whenever their variables are set.

No broker, server or Google endpoint can be reached here, so each is pointed at a port on 127.0.0.1 where
nothing listens (or a key file that is no key) and must fail there: a live test that skipped with its variable
set would report green without having touched anything."""

import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def outcome(test: str, **env: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", test],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return completed.stdout.strip().splitlines()[-1]


def test_each_live_test_runs_when_its_variable_is_set(tmp_path):
    (tmp_path / "key.json").write_text("{}")
    live = {
        "etl_tests/sources/test_kafka.py::test_a_day_of_a_live_broker_reads_what_was_produced": {"ETL_TEST_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed_port()}"},
        "etl_tests/sources/test_mongodb.py::test_a_live_mongodb_day": {"ETL_TEST_MONGODB_URL": f"mongodb://127.0.0.1:{closed_port()}/"},
        "etl_tests/sources/test_google_sheets.py::test_live_google_sheets_api": {
            "ETL_TEST_GOOGLE_SHEETS_KEY_FILE": str(tmp_path / "key.json"),
            "ETL_TEST_GOOGLE_SHEET_ID": "no-such-sheet",
        },
    }
    # At once: each waits out its client's connect timeout.
    with ThreadPoolExecutor(len(live)) as pool:
        summaries = dict(zip(live, pool.map(lambda item: outcome(item[0], **item[1]), live.items()), strict=True))
    for test, summary in summaries.items():
        assert "1 failed" in summary and "skipped" not in summary, f"{test}: {summary}"
