"""Extract and load, ours beside dlt and the COPY floors, on one local PostgreSQL in one run.

Each case runs as its own process; its peak RSS comes from the kernel (wait4), its time from the case itself
(around the work, not the interpreter start). The cases the targets compare run `--repeat` times, taking
turns, and report their median time and highest peak, because one run on a shared 2-core machine can be
off by a third. Prints a table and writes .etl/bench/results-<rows>.json.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from etl_tests.support.servers import REPO, postgres_server

OUR_PYTHON = REPO / ".venv/bin/python"
PEER_PYTHON = REPO / ".etl/bench-venv/bin/python"
BENCH_TABLE = """
CREATE TABLE bench AS SELECT
    g::bigint AS id,
    (g % 100000)::int AS customer_id,
    (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g % 4] AS status,
    ((g % 100000) / 100.0)::numeric(12, 2) AS amount,
    (g * 0.37)::double precision AS score,
    timestamptz '2026-11-01 00:00+00' + (g % 86400) * interval '1 second' AS created_at,
    timestamptz '2026-11-01 00:00+00' + (g % 86400) * interval '1 second' + interval '1 hour' AS updated_at,
    (g % 2 = 0) AS active,
    substr(md5(g::text), 1, 30) AS note,
    date '2026-11-01' + (g % 30) AS day
FROM generate_series(1, {rows}) g
"""
SMALL_TABLE = """
CREATE TABLE events30 AS SELECT g AS id, timestamptz '2026-10-01 00:00+00' + (g % 30) * interval '1 day' + (g % 86400) * interval '1 second' AS created_at,
    md5(g::text) AS payload FROM generate_series(1, 30000) g
"""
SUMS = "SELECT COUNT(*), SUM(amount), SUM(id), SUM(customer_id), SUM(EXTRACT(EPOCH FROM created_at)) FROM bench"
EXPECTED_TYPES = {"amount": "Decimal(precision=12, scale=2)", "customer_id": "Int32", "created_at": "Datetime(time_unit='us', time_zone='UTC')"}


def run_case(python: Path, script: list[str], case: str, args: dict, env: dict, log: Path) -> dict:
    with log.open("a") as err:
        err.write(f"\n=== {case}\n")
        err.flush()
        process = subprocess.Popen([str(python), *script, case, json.dumps(args)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"benchmark case {case} failed; see {log}")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024)
    result["rows_per_s"] = round(result["rows"] / result["seconds"])
    return result


# The cases behind the target ratios; the slow peers (minutes at millions of rows) run once.
REPEATED = ("copy_extract_floor", "ours_extract", "ours_extract_contract", "dlt_connectorx", "copy_load_floor", "ours_load")


def quiesce(dsns: list[str], seconds: float = 300) -> None:
    """Vacuum what the earlier cases wrote and flush their dirty pages, so that no case pays for another's
    writes: on 2 cores an autovacuum worker that wakes up mid-case takes a core from it. The server runs
    with fsync off, so a CHECKPOINT only hands its pages to the kernel; sync() writes them out now rather
    than during the next case."""
    deadline = time.monotonic() + seconds
    for dsn in dsns:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                if not conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'").fetchone()[0]:
                    break
                time.sleep(0.5)
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
    os.sync()


def median_of(runs: list[dict]) -> dict:
    seconds = statistics.median(r["seconds"] for r in runs)
    result = {**runs[0], "seconds": seconds, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "all_seconds": [round(r["seconds"], 3) for r in runs]}
    result["rows_per_s"] = round(result["rows"] / seconds)
    return result


def main(rows: int, repeat: int) -> int:
    out_dir = REPO / ".etl/bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / f"cases-{rows}.log"
    log.write_text("")
    work = Path(tempfile.mkdtemp(prefix="etl-bench-"))
    dumps = Path(tempfile.mkdtemp(prefix="etl-bench-copy-"))
    if os.geteuid() == 0:
        shutil.chown(dumps, "postgres")
    with postgres_server() as pg:
        source_db, warehouse_db = pg.create_database("source"), pg.create_database("warehouse")
        source_dsn = f"host=127.0.0.1 port={pg.port} user=postgres dbname={source_db}"
        warehouse_dsn = f"host=127.0.0.1 port={pg.port} user=postgres dbname={warehouse_db}"
        print(f"Creating bench ({rows:,} rows x 10 columns) in PostgreSQL on 127.0.0.1:{pg.port}")
        with psycopg.connect(source_dsn, autocommit=True) as conn:
            conn.execute(BENCH_TABLE.format(rows=int(rows)))
            conn.execute(SMALL_TABLE)
            conn.execute("VACUUM ANALYZE bench")
            conn.execute(f"COPY bench TO '{dumps}/bench.bin' (FORMAT binary)")
            source_sums = conn.execute(SUMS).fetchone()
        args = {
            "work": str(work),
            "source": pg.url(source_db),
            "warehouse": pg.url(warehouse_db),
            "source_dsn": source_dsn,
            "source_sqlalchemy": f"postgresql+psycopg2://postgres@127.0.0.1:{pg.port}/{source_db}",
            "warehouse_dsn": f"postgresql://postgres:unused-with-trust-auth@127.0.0.1:{pg.port}/{warehouse_db}",
            "binary_file": f"{dumps}/bench.bin",
        }
        ours = {**os.environ, "DAGSTER_HOME": str(work), "ETL_SECRETS_FILE": str(work / "secrets.toml")}
        peers = {**os.environ, "RUNTIME__LOG_LEVEL": "WARNING"}
        plan = [
            ("copy_extract_floor", OUR_PYTHON, ["-m", "benchmarks.cases"], args, ours),
            ("ours_extract", OUR_PYTHON, ["-m", "benchmarks.cases"], args, ours),
            ("ours_extract_contract", OUR_PYTHON, ["-m", "benchmarks.cases"], {**args, "contract": True, "work": str(work / "contract")}, ours),
            ("dlt_connectorx", PEER_PYTHON, ["benchmarks/peers.py"], args, peers),
            ("dlt_pyarrow", PEER_PYTHON, ["benchmarks/peers.py"], args, peers),
            ("copy_load_floor", OUR_PYTHON, ["-m", "benchmarks.cases"], args, ours),
            ("ours_load", OUR_PYTHON, ["-m", "benchmarks.cases"], args, ours),
            ("dlt_load", PEER_PYTHON, ["benchmarks/peers.py"], args, peers),
            ("naive_executemany", OUR_PYTHON, ["-m", "benchmarks.cases"], args, ours),
            ("ours_backfill", OUR_PYTHON, ["-m", "benchmarks.cases"], args, ours),
        ]
        (work / "contract").mkdir()
        # Loads start from no table each time (a second load would be a replace, a different piece of work).
        resets = {
            "copy_load_floor": (source_dsn, "DROP TABLE IF EXISTS copy_floor"),
            "ours_load": (warehouse_dsn, "DROP TABLE IF EXISTS bench"),
        }
        # The one-off peers (20 s to minutes each) run after the turns: the page cache they churn through is
        # reclaimed by the kernel for a while afterwards, which would land on whichever compared case came next.
        order = [step for turn in range(repeat) for step in plan if step[0] in REPEATED] + [step for step in plan if step[0] not in REPEATED]
        runs: dict[str, list[dict]] = {}
        for name, python, script, case_args, env in order:
            case = "ours_extract" if name == "ours_extract_contract" else name
            print(f"  running {name} ...", flush=True)
            if name in resets:
                with psycopg.connect(resets[name][0], autocommit=True) as conn:
                    conn.execute(resets[name][1])
            quiesce([source_dsn, warehouse_dsn])
            runs.setdefault(name, []).append(run_case(python, script, case, case_args, env, log))
        results = {name: median_of(runs[name]) for name, *_ in plan}
        with psycopg.connect(warehouse_dsn) as conn:
            warehouse_sums = conn.execute(SUMS).fetchone()
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(dumps, ignore_errors=True)
    report = summarize(rows, repeat, results, source_sums, warehouse_sums)
    path = out_dir / f"results-{rows}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nResults: {path}")
    return 0 if report["verified"] else 1


def summarize(rows: int, repeat: int, results: dict[str, dict], source_sums, warehouse_sums) -> dict:
    schema = results["ours_extract"]["schema"]
    types_ok = all(schema.get(column) == expected for column, expected in EXPECTED_TYPES.items())
    sums_ok = tuple(source_sums) == tuple(warehouse_sums)
    rate = {name: r["rows_per_s"] for name, r in results.items()}
    ratios = {
        "extract / dlt connectorx": rate["ours_extract"] / rate["dlt_connectorx"],
        "extract / dlt pyarrow": rate["ours_extract"] / rate["dlt_pyarrow"],
        "extract / COPY floor": rate["ours_extract"] / rate["copy_extract_floor"],
        "load / dlt": rate["ours_load"] / rate["dlt_load"],
        "load / naive executemany": rate["ours_load"] / rate["naive_executemany"],
        "load / COPY floor": rate["ours_load"] / rate["copy_load_floor"],
        "contract wall time / without": results["ours_extract_contract"]["seconds"] / results["ours_extract"]["seconds"],
    }
    backfill = results["ours_backfill"]
    print(f"\n{'case':<24}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>13}  runs (seconds)")
    for name, r in results.items():
        runs = ", ".join(f"{s:.2f}" for s in r["all_seconds"])
        print(f"{name:<24}{r['rows']:>12,}{r['seconds']:>10.2f}{r['rows_per_s']:>12,}{r['peak_rss_mb']:>13,}  {runs}")
    print()
    for name, value in ratios.items():
        print(f"{name:<32}{value:>8.2f}x")
    print(
        f"\n30-day single-run backfill: {backfill['partitions']} partitions, {backfill['runs']} run(s), "
        f"{backfill['seconds']:.1f}s, {backfill['seconds'] / max(backfill['partitions'], 1):.2f}s per partition"
    )
    print(f"types survive (decimal(12,2), int32, UTC timestamps): {'yes' if types_ok else 'NO: ' + json.dumps(schema)}")
    print(f"row count and sums match the source: {'yes' if sums_ok else f'NO: {source_sums} vs {warehouse_sums}'}")
    return {"rows": rows, "repeat": repeat, "results": results, "ratios": ratios, "types_ok": types_ok, "sums_ok": sums_ok, "verified": types_ok and sums_ok}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case behind a target ratio; the median counts")
    args = parser.parse_args()
    raise SystemExit(main(args.rows, args.repeat))
