"""Real servers for the tests: PostgreSQL and MariaDB from Debian's packages and Azurite (Blob API) from npm."""

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[2]
# Azurite's published development account; it only ever opens 127.0.0.1 here.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, seconds: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    tail = log.read_text()[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not open 127.0.0.1:{port} within {seconds}s\n{tail}")


@dataclass(frozen=True)
class Postgres:
    port: int
    pg_ctl: Path | None = None
    data: Path | None = None
    options: str = ""
    log: Path | None = None

    def stop(self) -> None:
        """Stop the server as a crash would (immediate mode): clients see their connections refused."""
        subprocess.run(_as_postgres_user([str(self.pg_ctl), "-D", str(self.data), "-m", "immediate", "-w", "stop"]), check=True, capture_output=True)

    def start(self) -> None:
        subprocess.run(
            _as_postgres_user([str(self.pg_ctl), "-D", str(self.data), "-l", str(self.log), "-o", self.options, "-w", "start"]), check=True, capture_output=True
        )
        wait_for_port(self.port, 30, "PostgreSQL", self.log)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


def _as_postgres_user(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bindirs:
        raise RuntimeError("PostgreSQL is not installed; run `bash scripts/setup.sh --test-servers`")
    bindir = Path(bindirs[-1])
    base = Path(tempfile.mkdtemp(prefix="etl-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data, log, port = base / "data", base / "server.log", free_port()
    subprocess.run(
        _as_postgres_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]), check=True, capture_output=True
    )
    options = f"-p {port} -h 127.0.0.1 -k {base} -c fsync=off -c full_page_writes=off"
    server = Postgres(port=port, pg_ctl=bindir / "pg_ctl", data=data, options=options, log=log)
    server.start()
    try:
        yield server
    finally:
        subprocess.run(_as_postgres_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@dataclass(frozen=True)
class MariaDB:
    port: int

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}?charset=utf8mb4"

    def create_database(self, prefix: str) -> str:
        import pymysql

        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with pymysql.connect(host="127.0.0.1", port=self.port, user="root") as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        return name


@contextmanager
def mariadb_server() -> Iterator[MariaDB]:
    """A throwaway MariaDB (Debian's `mariadb-server`) on a free port, its data in a temporary folder."""
    daemon, install = shutil.which("mariadbd") or "/usr/sbin/mariadbd", shutil.which("mariadb-install-db")
    if not install or not Path(daemon).exists():
        raise RuntimeError("MariaDB is not installed; run `bash scripts/setup.sh --test-servers`")
    base = Path(tempfile.mkdtemp(prefix="etl-mariadb-"))
    data, log, port = base / "data", base / "server.log", free_port()
    # root may run mariadbd only when told to; as another user the server runs as that user.
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal", "--skip-test-db", *user],
        check=True,
        capture_output=True,
    )
    args = [
        daemon,
        "--no-defaults",
        f"--datadir={data}",
        f"--socket={base / 'mysql.sock'}",
        f"--pid-file={base / 'mysqld.pid'}",
        "--bind-address=127.0.0.1",
        f"--port={port}",
        "--innodb-flush-log-at-trx-commit=0",
        "--skip-log-bin",
        f"--log-error={log}",
        *user,
    ]
    try:
        with listening(args, log, port, "MariaDB", seconds=60):
            yield MariaDB(port=port)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def listening(args: list[str], log: Path, port: int, what: str, seconds: float) -> Iterator[None]:
    """Run a server in its own session until the block ends, once it listens on `port`; then terminate it."""
    with log.open("w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, seconds, what, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Azurite:
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={self.endpoint};"

    def lake_url(self, container: str, prefix: str = "lake") -> str:
        return f"abfss://{container}@{AZURITE_ACCOUNT}.dfs.core.windows.net/{prefix}"


@contextmanager
def azurite_server() -> Iterator[Azurite]:
    binary = REPO / ".etl/tools/node_modules/.bin/azurite-blob"
    if not binary.exists():
        raise RuntimeError("Azurite is not installed; run `bash scripts/setup.sh --test-servers`")
    location = Path(tempfile.mkdtemp(prefix="etl-azurite-"))
    port = free_port()
    log = location / "azurite.log"
    args = [str(binary), "--skipApiVersionCheck", "--location", str(location), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    try:
        with listening(args, log, port, "Azurite", seconds=30):
            yield Azurite(port=port)
    finally:
        shutil.rmtree(location, ignore_errors=True)


@dataclass(frozen=True)
class DagsterDev:
    port: int
    home: Path

    @property
    def graphql_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"


@contextmanager
def dagster_dev_server(home: Path, env: dict[str, str] | None = None) -> Iterator[DagsterDev]:
    """`dagster dev` (webserver and daemon) from a project folder holding workspace.yaml and dagster.yaml;
    `env` adds variables (e.g. ETL_WAREHOUSE_URL) to a clean environment."""
    import httpx

    for name in ("workspace.yaml", "dagster.yaml"):
        shutil.copy(REPO / name, home / name)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_", "DAGSTER_"))} | {"DAGSTER_HOME": str(home)} | (env or {})
    log = home / "dagster-dev.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(REPO / ".venv/bin/dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)],
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ version }"}, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"dagster dev did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield DagsterDev(port=port, home=home)
    finally:
        # dagster dev shuts its webserver and daemon down cleanly on SIGINT to the process group.
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
