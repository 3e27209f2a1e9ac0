#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine with Python 3.11: the virtualenv, and with --test-servers
# also PostgreSQL and MariaDB (Debian's packages) and Azurite (npm) for the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
AZURITE_VERSION=3.37.0
CHECKOV_VERSION=3.3.30

if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv >/dev/null 2>&1; then
        # Debian's own Python ships venv separately.
        rm -rf .venv
        echo "setup: installing python3-venv from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        "$PYTHON" -m venv .venv
    fi
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python dependencies into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[test]'
    rm -f .venv/.installed-* && touch "$stamp"
fi

if [ "${1:-}" = "--test-servers" ]; then
    if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
        echo "setup: installing PostgreSQL from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    if ! command -v mariadb-install-db >/dev/null || [ ! -x /usr/sbin/mariadbd ]; then
        echo "setup: installing MariaDB from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
    fi
    if [ ! -x .etl/tools/node_modules/.bin/azurite-blob ]; then
        if ! command -v npm >/dev/null; then
            echo "setup: installing Node.js and npm from Debian's packages"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
        fi
        echo "setup: installing Azurite $AZURITE_VERSION from npm"
        mkdir -p .etl/tools
        npm install --silent --no-save --no-audit --no-fund --prefix .etl/tools "azurite@$AZURITE_VERSION" >/dev/null
    fi
    # checkov pins its own versions of common libraries, so it lives in a virtualenv of its own.
    if [ ! -x .etl/checkov-venv/bin/checkov ] || ! .etl/checkov-venv/bin/checkov --version | grep -qx "$CHECKOV_VERSION"; then
        echo "setup: installing checkov $CHECKOV_VERSION into .etl/checkov-venv"
        "$PYTHON" -m venv .etl/checkov-venv
        .etl/checkov-venv/bin/python -m pip install --quiet "checkov==$CHECKOV_VERSION"
    fi
fi
