#!/usr/bin/env bash
# Benchmark extract and load against dlt and the COPY floors, on one PostgreSQL, in one run.
# Usage: bash benchmarks/run.sh [ROWS] [REPEAT]   (defaults 3000000 and 3: runs of each compared case, median kept)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test-servers
if [ ! -x .etl/bench-venv/bin/python ]; then
    python3.11 -m venv .etl/bench-venv
fi
stamp=.etl/bench-venv/.installed-$(sha1sum benchmarks/requirements-peers.txt | cut -c1-12)
if [ ! -f "$stamp" ]; then
    echo "benchmark: installing the peers (dlt, connectorx) into .etl/bench-venv"
    .etl/bench-venv/bin/python -m pip install --quiet -r benchmarks/requirements-peers.txt
    rm -f .etl/bench-venv/.installed-* && touch "$stamp"
fi
exec .venv/bin/python -m benchmarks.run --rows "${1:-3000000}" --repeat "${2:-3}"
