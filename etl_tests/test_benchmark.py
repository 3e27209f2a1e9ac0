"""The benchmark keeps working: a small run of benchmarks/run.sh completes, checks that types and sums
survive end to end, and reports every case. Speed is never asserted here; it is the benchmark's output."""

import json
import subprocess

from benchmarks.run import REPEATED
from etl_tests.support.servers import REPO

ROWS = 20_000
CASES = {
    "copy_extract_floor",
    "ours_extract",
    "ours_extract_contract",
    "dlt_connectorx",
    "dlt_pyarrow",
    "copy_load_floor",
    "ours_load",
    "dlt_load",
    "naive_executemany",
    "ours_backfill",
}


def test_the_benchmark_runs_end_to_end():
    result = subprocess.run(["bash", "benchmarks/run.sh", str(ROWS), "2"], cwd=REPO, capture_output=True, text=True, timeout=1200)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((REPO / f".etl/bench/results-{ROWS}.json").read_text())
    assert report["types_ok"] and report["sums_ok"]
    assert set(report["results"]) == CASES
    assert all(case["rows"] > 0 and case["peak_rss_mb"] > 0 for case in report["results"].values())
    runs = {name: len(case["all_seconds"]) for name, case in report["results"].items()}
    assert runs == {name: 2 if name in REPEATED else 1 for name in CASES}
    backfill = report["results"]["ours_backfill"]
    assert (backfill["partitions"], backfill["runs"], backfill["rows"]) == (30, 1, 30_000)
    assert "extract / dlt connectorx" in result.stdout and "rows/s" in result.stdout
