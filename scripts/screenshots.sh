#!/usr/bin/env bash
# Re-take the README's screenshots of the Dagster UI: run the demo, start the UI on the demo's instance,
# and photograph it with headless Chromium (Debian's package) through playwright-core (npm).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-3311}
command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
# A prefix of its own: npm --no-save prunes what else lies in a prefix, which took the tests' Azurite along.
if [ ! -d .etl/browser-tools/node_modules/playwright-core ]; then
    npm install --silent --no-save --no-audit --no-fund --prefix .etl/browser-tools playwright-core@1.65.1 >/dev/null
fi
# The events API serves one day of the week that breaks the contract too often, so the pictures show a
# blocked day among loaded ones; the demo run over the week then fails on that day, as it should.
bad_day=$(date -u -d '4 days ago' +%F)
export DAGSTER_HOME="$PWD"
bash scripts/setup.sh >/dev/null
.venv/bin/python -m etl_assets.demo.events_api 8765 "$bad_day" >/dev/null & api=$!
bash scripts/demo.sh 7 >/dev/null 2>&1 || echo "the demo week failed on $bad_day, as intended"
# Job control gives dagster dev a process group of its own and keeps SIGINT, which a script's background
# jobs otherwise ignore; on SIGINT it stops its webserver, daemon and code server.
set -m
.venv/bin/dagster dev -h 127.0.0.1 -p "$PORT" >.etl/screenshots-dagster.log 2>&1 & ui=$!
set +m
trap 'kill -INT -- -$ui 2>/dev/null; wait $ui 2>/dev/null; kill $api 2>/dev/null' EXIT
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$PORT/server_info" >/dev/null && break; sleep 1; done
NODE_PATH=.etl/browser-tools/node_modules node docs/screenshots.cjs "http://127.0.0.1:$PORT" docs "$bad_day"
