#!/usr/bin/env bash
# Set up (PostgreSQL, MariaDB, RabbitMQ, NATS and Azurite included), then run the whole test suite. The tests start and stop
# the servers they need.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test-servers
exec .venv/bin/python -m pytest "$@"
