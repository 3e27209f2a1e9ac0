"""Real file servers on 127.0.0.1, each serving a folder of the test's, for file drops over every protocol.

SFTP is asyncssh's server (password and public-key auth, a host key the test writes to a known_hosts file),
FTP is pyftpdlib, WebDAV is wsgidav served by cheroot, and HTTP is the standard library's directory listing.
Each runs in a daemon thread of the test process and stops when its context exits.
"""

import asyncio
import base64
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncssh

USER = "dropper"
PASSWORD = "drop-s3cret"


@dataclass(frozen=True)
class FileServer:
    """A server's landing URL for `folder` inside its root, and how a client proves who it is and who the server is."""

    scheme: str
    port: int
    root: Path
    known_hosts: Path | None = None
    client_key: Path | None = None

    def url(self, folder: str = "landing") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{folder}"


class _PasswordOrKey(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USER and password == PASSWORD


@contextmanager
def sftp_server(root: Path, keys: Path) -> Iterator[FileServer]:
    """asyncssh's SFTP server chrooted to `root`, on its own event loop in a thread."""
    keys.mkdir(parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key.write_private_key(keys / "client_key")
    loop = asyncio.new_event_loop()
    started: dict = {}

    def sftp_factory(chan):
        return asyncssh.SFTPServer(chan, chroot=str(root))

    async def start() -> None:
        started["server"] = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=_PasswordOrKey,
            server_host_keys=[host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(client_key.export_public_key().decode()),
            sftp_factory=sftp_factory,
            allow_scp=False,
        )

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    port = started["server"].sockets[0].getsockname()[1]
    known_hosts = keys / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n")
    try:
        yield FileServer("sftp", port, root, known_hosts=known_hosts, client_key=keys / "client_key")
    finally:

        async def stop() -> None:
            started["server"].close()
            await started["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextmanager
def _in_thread(serve: Callable[[], None], stop: Callable[[], None]) -> Iterator[None]:
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop()
        thread.join(10)


@contextmanager
def ftp_server(root: Path) -> Iterator[FileServer]:
    """pyftpdlib with one user whose home is `root`; anonymous logins are refused."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(root), perm="elr")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "banner": "test ftp", "encoding": "utf-8"})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    # pyftpdlib logs every session at INFO to stderr, which would bury a failing test's output.
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    with _in_thread(functools.partial(server.serve_forever, timeout=0.2, handle_exit=False), server.close_all):
        yield FileServer("ftp", server.address[1], root)


@contextmanager
def webdav_server(root: Path) -> Iterator[FileServer]:
    """wsgidav serving `root` read-only behind HTTP basic auth, on cheroot."""
    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp

    app = WsgiDAVApp(
        {
            "provider_mapping": {"/": {"root": str(root), "readonly": True}},
            "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORD}}}},
            "http_authenticator": {"accept_basic": True, "accept_digest": False, "default_to_digest": False, "trusted_auth_header": None},
            "verbose": 0,
            "logging": {"enable": False, "enable_loggers": []},
        }
    )
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=4)
    server.prepare()
    with _in_thread(server.serve, server.stop):
        yield FileServer("webdav", server.bind_addr[1], root)


class _GuardedListing(SimpleHTTPRequestHandler):
    """The standard library's listing and files, to a client that sends the test user's basic auth only."""

    def log_message(self, *args) -> None:
        pass

    def _signed_in(self) -> bool:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") == expected:
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="drops"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_GET(self) -> None:
        if self._signed_in():
            super().do_GET()

    def do_HEAD(self) -> None:
        if self._signed_in():
            super().do_HEAD()


@contextmanager
def http_listing_server(root: Path) -> Iterator[FileServer]:
    """The standard library's HTML directory index of `root`, behind basic auth."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_GuardedListing, directory=str(root)))

    def stop() -> None:
        server.shutdown()
        server.server_close()

    with _in_thread(server.serve_forever, stop):
        yield FileServer("http", server.server_port, root)
