#!/usr/bin/env bash
# The Dagster UI and daemon on http://127.0.0.1:3000, over the same instance the demo writes to.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="$PWD"
exec .venv/bin/dagster dev -h 127.0.0.1 -p "${PORT:-3000}"
