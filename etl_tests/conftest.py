import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from azure.storage.blob import ContainerClient

from etl_assets.demo.events_api import DEMO_API_KEY
from etl_assets.demo.shop import DEMO_SOURCES_FILE, ensure_demo_database
from etl_resources.databases.engines import create_engine
from etl_tests.support.api_server import ApiServer, ApiState
from etl_tests.support.file_servers import FileServer, ftp_server, http_listing_server, sftp_server, webdav_server
from etl_tests.support.mongodb_server import NO_MONGODB, FakeMongo, mongodb_url
from etl_tests.support.mssql_server import MSSQL_URL_VARIABLE, NO_MSSQL, drop_schema, unique_schema
from etl_tests.support.nats_server import NatsServer, nats_server
from etl_tests.support.oracle_server import NO_ORACLE, ORACLE_URL_VARIABLE
from etl_tests.support.platform import Platform
from etl_tests.support.rabbitmq_server import RabbitMQ, rabbitmq_server
from etl_tests.support.rabbitmq_server import available as rabbitmq_available
from etl_tests.support.servers import Azurite, MariaDB, Postgres, azurite_server, mariadb_server, postgres_server
from etl_tests.support.soap_server import SoapServer, soap_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    with mariadb_server() as server:
        yield server


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with azurite_server() as server:
        yield server


@pytest.fixture(scope="session")
def mssql_url() -> str:
    """The SQL Server / Azure SQL database of ETL_TEST_MSSQL_URL; every live test asks for it, so without one
    each shows as skipped with the reason instead of passing unseen."""
    url = os.environ.get(MSSQL_URL_VARIABLE)
    if not url:
        pytest.skip(NO_MSSQL)
    return url


@pytest.fixture(scope="session")
def oracle_url() -> str:
    """The Oracle database of ETL_TEST_ORACLE_URL; without one each live test shows as skipped with the reason."""
    url = os.environ.get(ORACLE_URL_VARIABLE)
    if not url:
        pytest.skip(NO_ORACLE)
    return url


@pytest.fixture(scope="session")
def mssql_engine(mssql_url: str) -> Iterator[sa.Engine]:
    """Made as the Warehouse resource makes its engine, driver defaults and Entra token included."""
    engine = create_engine(sa.make_url(mssql_url), pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture
def mssql_schema(mssql_engine: sa.Engine) -> Iterator[str]:
    """A schema name no one else uses; the first load creates it, and it goes with its tables afterwards."""
    schema = unique_schema()
    yield schema
    drop_schema(mssql_engine, schema)


@pytest.fixture
def fake_sql_server() -> Iterator[dict]:
    """A TCP endpoint on 127.0.0.1 where a SQL Server would be: it keeps the first bytes of each connection (a
    TDS client opens with a PRELOGIN packet, type 0x12) and hangs up, so the client gives up at once."""
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            with client:
                client.settimeout(5)
                try:
                    received.append(client.recv(64))
                except OSError:
                    received.append(b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield {"port": listener.getsockname()[1], "received": received}
    finally:
        stop.set()
        thread.join()
        listener.close()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project folder as cwd, so the default `.etl/` lake and warehouse land inside it. The shell's
    ETL_* settings would reconfigure the platform under test and go; ETL_TEST_* ones configure the tests and stay."""
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("ETL_") and not name.startswith("ETL_TEST_")]:
        monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def platform(workdir: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> Platform:
    return Platform(workdir=workdir, instance=instance, monkeypatch=monkeypatch)


@pytest.fixture
def demo_sources(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The bundled demo's sources file, with its database generated and its API key in the environment."""
    ensure_demo_database()
    monkeypatch.setenv("ECOM_API_KEY", DEMO_API_KEY)
    return DEMO_SOURCES_FILE.read_text()


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer(ApiState())
    yield server
    server.close()


@pytest.fixture
def container(azurite):
    name = f"lake-{uuid.uuid4().hex[:8]}"
    client = ContainerClient.from_connection_string(azurite.connection_string, name)
    client.create_container()
    yield client
    client.delete_container()


@contextmanager
def webhook_receiver() -> Iterator[dict]:
    """A webhook on 127.0.0.1 that records the JSON bodies posted to it; `failing["next"]` refuses that many."""
    received: list[dict] = []
    failing = {"next": 0}

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status = 500 if failing["next"] > 0 else 200
            failing["next"] -= 1
            if status == 200:
                received.append(body)
            self.send_response(status)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_port}/hook", "received": received, "failing": failing}
    finally:
        server.shutdown()


@pytest.fixture
def webhook() -> Iterator[dict]:
    with webhook_receiver() as hook:
        yield hook


@pytest.fixture(scope="session")
def drop_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every file server of a session serves; each test drops files into a folder of its own in it."""
    return tmp_path_factory.mktemp("drops")


@pytest.fixture(scope="session")
def sftp(drop_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    with sftp_server(drop_root, tmp_path_factory.mktemp("ssh")) as server:
        yield server


@pytest.fixture(scope="session")
def ftp(drop_root: Path) -> Iterator[FileServer]:
    with ftp_server(drop_root) as server:
        yield server


@pytest.fixture(scope="session")
def webdav(drop_root: Path) -> Iterator[FileServer]:
    with webdav_server(drop_root) as server:
        yield server


@pytest.fixture(scope="session")
def http_listing(drop_root: Path) -> Iterator[FileServer]:
    with http_listing_server(drop_root) as server:
        yield server


@pytest.fixture(scope="session")
def nats_jetstream() -> Iterator[NatsServer]:
    """nats-server with JetStream and user/password auth on 127.0.0.1, for the session."""
    with nats_server() as server:
        yield server


@pytest.fixture(scope="session")
def nats_token_jetstream() -> Iterator[NatsServer]:
    """nats-server with JetStream that takes a token (NATS_TOKEN) instead of a user and password."""
    with nats_server(auth="token") as server:
        yield server


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    """A private RabbitMQ broker with the stream plugin; skipped without Debian's rabbitmq-server, except under CI."""
    if not rabbitmq_available() and os.environ.get("CI") != "true":
        pytest.skip("RabbitMQ is not installed (Debian's rabbitmq-server); run `bash scripts/setup.sh --test-servers`")
    with rabbitmq_server() as server:
        yield server


@pytest.fixture(scope="session")
def sheets_server():
    """A local server that answers like Google's token endpoint and the Sheets API v4, with a service account key for it."""
    from etl_tests.support.sheets_server import SheetsServer

    server = SheetsServer()
    yield server
    server.close()


@pytest.fixture
def mongo(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> FakeMongo:
    """The in-memory MongoDB every mongodb source of the test reaches; its user's password is the secret MONGO_PASSWORD."""
    from etl_resources.sources.mongodb import extract as mongodb_extract

    fake = FakeMongo()
    monkeypatch.setattr(mongodb_extract, "_client", fake.client)
    monkeypatch.setenv("MONGO_PASSWORD", fake.password)
    return fake


@pytest.fixture(scope="session")
def mongodb_live_url() -> str:
    """The real MongoDB of ETL_TEST_MONGODB_URL; without one the live test shows as skipped with the reason."""
    url = mongodb_url()
    if not url:
        pytest.skip(NO_MONGODB)
    return url


@pytest.fixture(scope="session")
def soap_service() -> Iterator[SoapServer]:
    """The spyne SOAP service on 127.0.0.1, started and stopped with the session; tests set and reset its auth."""
    with soap_server() as server:
        yield server


@pytest.fixture
def kafka_fake(monkeypatch: pytest.MonkeyPatch):
    """An in-memory Kafka cluster (`etl_tests/support/kafka_fake.py`) behind the kafka kind's consumer seam: no
    Kafka broker can be installed here."""
    from etl_resources.sources.kafka import extract
    from etl_tests.support.kafka_fake import FakeKafka

    fake = FakeKafka()
    monkeypatch.setattr(extract, "_consumer", fake.consumer)
    return fake
