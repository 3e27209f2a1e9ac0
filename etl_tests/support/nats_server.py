"""A real NATS server with JetStream (Debian's `nats-server`) on 127.0.0.1 for the tests, with user/password or token auth."""

import json
import os
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from etl_tests.support.servers import free_port, listening

NATS_SERVER = Path("/usr/sbin/nats-server")
NATS_USER = "etl"
# Characters a config file or a URL would mangle if they were not passed through as they are.
NATS_PASSWORD = "s3cret%'\"pw"
NATS_TOKEN = "t0ken%'\"\\"


@dataclass(frozen=True)
class NatsServer:
    port: int
    monitor_port: int

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


def nats_binary() -> str:
    """The server's path; skipped without it, except under CI, where a missing server is a broken setup."""
    found = shutil.which("nats-server") or (str(NATS_SERVER) if NATS_SERVER.exists() else None)
    if found is None:
        message = "nats-server is not installed (fix: `apt-get install nats-server`, or `bash scripts/setup.sh --test-servers`)"
        if os.environ.get("CI") == "true":
            raise RuntimeError(message)
        pytest.skip(message)
    return found


def _config(port: int, monitor_port: int, store: Path, auth: str) -> str:
    sign_in = f"token: {json.dumps(NATS_TOKEN)}" if auth == "token" else f"user: {json.dumps(NATS_USER)}, password: {json.dumps(NATS_PASSWORD)}"
    return f"listen: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor_port}\njetstream {{ store_dir: {json.dumps(str(store))} }}\nauthorization {{ {sign_in} }}\n"


def _wait_jetstream(monitor_port: int, log: Path, seconds: float) -> None:
    """Ready once /healthz says JetStream is up, not merely once the port is open."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nats-server's JetStream was not ready within {seconds}s\n{log.read_text()[-2000:]}")


@contextmanager
def nats_server(auth: str = "password") -> Iterator[NatsServer]:
    """A server whose clients sign in with NATS_USER/NATS_PASSWORD, or with `auth="token"` with NATS_TOKEN."""
    binary = nats_binary()
    base = Path(tempfile.mkdtemp(prefix="etl-nats-"))
    port, monitor_port = free_port(), free_port()
    config = base / "nats.conf"
    config.write_text(_config(port, monitor_port, base / "store", auth))
    log = base / "nats.log"
    try:
        with listening([binary, "-c", str(config)], log, port, "nats-server", seconds=30):
            _wait_jetstream(monitor_port, log, seconds=30)
            yield NatsServer(port=port, monitor_port=monitor_port)
    finally:
        shutil.rmtree(base, ignore_errors=True)
