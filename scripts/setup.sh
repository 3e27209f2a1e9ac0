#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine with Python 3.11: the virtualenv, and with --test-servers
# also PostgreSQL, MariaDB, RabbitMQ and NATS (Debian's packages) and Azurite (npm) for the test suite, and ODBC Driver 18
# registered with unixODBC for pyodbc, for the live tests against a SQL Server elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
AZURITE_VERSION=3.37.0
CHECKOV_VERSION=3.3.30
ODBC_DRIVER="ODBC Driver 18 for SQL Server"

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
    if ! command -v rabbitmq-server >/dev/null && [ ! -x /usr/sbin/rabbitmq-server ]; then
        echo "setup: installing RabbitMQ from Debian's packages"
        apt-get update -qq
        # The package's own service is not wanted: the tests start a broker of their own in a temporary directory.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
        service rabbitmq-server stop >/dev/null 2>&1 || true
    fi
    if ! command -v nats-server >/dev/null; then
        echo "setup: installing NATS server from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
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
    if ! command -v odbcinst >/dev/null || ! command -v isql >/dev/null; then
        echo "setup: installing unixODBC from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unixodbc odbcinst >/dev/null
    fi
    # Without Microsoft's apt repository (the image uses it), the ODBC Driver 18 inside the mssql-python-odbc
    # wheel serves pyodbc too. A registration whose file is gone (venv moved, wheel upgraded) is made again;
    # one that works, Microsoft's msodbcsql18 included, is left alone.
    registered=$(odbcinst -q -d -n "$ODBC_DRIVER" 2>/dev/null | sed -n 's/^Driver *= *//p' || true)
    if [ -z "$registered" ] || [ ! -e "$registered" ]; then
        libs=$(.venv/bin/python -c 'import mssql_python_odbc, os; print(os.path.realpath(mssql_python_odbc.get_libs_dir()))')
        driver=$(ls "$libs"/linux/debian_ubuntu/*/lib/libmsodbcsql-18.*.so* | head -n 1)
        echo "setup: registering $ODBC_DRIVER from mssql-python-odbc with unixODBC"
        printf '[%s]\nDescription=Microsoft ODBC Driver 18 for SQL Server (from the mssql-python-odbc wheel)\nDriver=%s\n' "$ODBC_DRIVER" "$driver" \
            | odbcinst -i -d -r >/dev/null
    fi
    # checkov pins its own versions of common libraries, so it lives in a virtualenv of its own.
    if [ ! -x .etl/checkov-venv/bin/checkov ] || ! .etl/checkov-venv/bin/checkov --version | grep -qx "$CHECKOV_VERSION"; then
        echo "setup: installing checkov $CHECKOV_VERSION into .etl/checkov-venv"
        "$PYTHON" -m venv .etl/checkov-venv
        .etl/checkov-venv/bin/python -m pip install --quiet "checkov==$CHECKOV_VERSION"
    fi
fi
