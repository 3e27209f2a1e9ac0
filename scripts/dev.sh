#!/usr/bin/env bash
# The Dagster UI and daemon on http://127.0.0.1:3000, over the same instance the demo writes to,
# with the demo's ecom-events API beside it on 127.0.0.1:8765.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="$PWD"
.venv/bin/python -m etl_assets.demo.events_api &
api=$!
trap 'kill $api 2>/dev/null' EXIT
.venv/bin/dagster dev -h 127.0.0.1 -p "${PORT:-3000}"
