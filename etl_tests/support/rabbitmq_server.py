"""A throwaway RabbitMQ broker (Debian's `rabbitmq-server`) with the stream plugin, for the `rabbitmq` kind's tests.

Each broker has its own node name, ports, data folder and Erlang cookie (HOME is its temporary folder), and its own
epmd on a free port (ERL_EPMD_PORT): two test sessions never meet, and teardown stops that epmd too instead of
leaving a daemon on 4369 behind.
"""

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from etl_tests.support.servers import free_port, wait_for_port

# Debian's /usr/sbin wrappers switch to the `rabbitmq` user and its HOME; the scripts behind them run as anyone.
SCRIPTS = Path("/usr/lib/rabbitmq/bin")
START_SECONDS = 90
USER, PASSWORD = "etl", "Pa%ss'wörd"


@dataclass(frozen=True)
class RabbitMQ:
    host: str
    port: int
    amqp_port: int
    node: str
    env: dict[str, str]
    startup_seconds: float

    def ctl(self, *args: str) -> str:
        return _run([_script("rabbitmqctl"), "-n", self.node, *args], self.env)


def _script(name: str) -> str:
    path = SCRIPTS / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def available() -> bool:
    return (SCRIPTS / "rabbitmq-server").exists() or shutil.which("rabbitmq-server") is not None


def _run(args: list[str], env: dict[str, str], timeout: float = 60) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def _environment(base: Path) -> tuple[dict[str, str], int, int]:
    amqp, stream, dist, epmd = free_port(), free_port(), free_port(), free_port()
    (base / "enabled_plugins").write_text("[rabbitmq_stream].\n")
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.1 = 127.0.0.1:{amqp}\n"
        f"stream.listeners.tcp.1 = 127.0.0.1:{stream}\n"
        f"stream.advertised_host = 127.0.0.1\nstream.advertised_port = {stream}\n"
        "loopback_users = none\n"
    )
    env = {
        **os.environ,
        "HOME": str(base),
        "RABBITMQ_NODENAME": f"etl-test-{uuid.uuid4().hex[:8]}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(amqp),
        "RABBITMQ_DIST_PORT": str(dist),
        "ERL_EPMD_PORT": str(epmd),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
    }
    return env, amqp, stream


@contextmanager
def rabbitmq_server() -> Iterator[RabbitMQ]:
    """A broker on 127.0.0.1 with a user `etl` (a password with % ' and ö) on '/', stopped with its epmd at the end."""
    if not available():
        raise RuntimeError("RabbitMQ is not installed; run `bash scripts/setup.sh --test-servers` (Debian's rabbitmq-server)")
    base = Path(tempfile.mkdtemp(prefix="etl-rabbitmq-"))
    env, amqp, stream = _environment(base)
    node = env["RABBITMQ_NODENAME"]
    began = time.monotonic()
    with (base / "server.log").open("w") as out:
        process = subprocess.Popen([_script("rabbitmq-server")], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=base)
    try:
        wait_for_port(amqp, START_SECONDS, "RabbitMQ (AMQP)", base / "server.log")
        wait_for_port(stream, START_SECONDS, "RabbitMQ (stream)", base / "server.log")
        _run([_script("rabbitmqctl"), "-n", node, "await_startup", "--timeout", str(START_SECONDS)], env, timeout=START_SECONDS + 10)
        server = RabbitMQ(host="127.0.0.1", port=stream, amqp_port=amqp, node=node, env=env, startup_seconds=time.monotonic() - began)
        server.ctl("add_user", USER, PASSWORD)
        server.ctl("set_permissions", "-p", "/", USER, ".*", ".*", ".*")
        yield server
    finally:
        _stop(process, node, env)
        shutil.rmtree(base, ignore_errors=True)


def _stop(process: subprocess.Popen, node: str, env: dict[str, str]) -> None:
    try:
        _run([_script("rabbitmqctl"), "-n", node, "stop"], env, timeout=30)
    except (RuntimeError, subprocess.TimeoutExpired):
        pass
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()
    epmd = shutil.which("epmd") or "epmd"
    subprocess.run([epmd, "-port", env["ERL_EPMD_PORT"], "-kill"], env=env, capture_output=True, timeout=10, check=False)
