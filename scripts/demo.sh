#!/usr/bin/env bash
# Set up, then materialize the bundled demo (SQLite shop → local Parquet lake → SQLite warehouse)
# for the last DAYS days (default 3) in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="$PWD"
exec .venv/bin/python -m etl_assets.demo "$@"
