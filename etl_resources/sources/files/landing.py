"""A files source's landing folder as a `Lake`, on whichever protocol its URL names: one fsspec filesystem per
scheme, so listing, streaming reads and rejects are the same code on every protocol.

A local folder or an ADLS container is reached as the lake is (its credentials); the remote protocols sign in
with the source's `landing_connection`, whose `${NAME}` references are resolved when the folder is opened.
"""

import base64
import ftplib
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

import fsspec
from fsspec.asyn import sync_wrapper
from fsspec.implementations.ftp import FTPFileSystem
from fsspec.implementations.http import HTTPFileSystem

from etl_resources.lake.io_manager import LakeIOManager
from etl_resources.lake.store import AZURE_SCHEMES, Lake
from etl_resources.secrets import SecretResolver, redact
from etl_resources.sources.files.model import FileSource, LandingConnection

SIGN_IN = frozenset({"username", "password", "timeout_seconds"})
SSH = SIGN_IN | {"private_key", "known_hosts", "host_key_check"}


class LandingError(Exception):
    """The landing folder could not be listed or read; `transient` if trying again may work (an unreachable host)."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Login:
    """A `landing_connection` with its secrets resolved."""

    username: str | None
    password: str | None
    private_key: str | None
    known_hosts: str | None
    host_key_check: bool
    timeout: float


Opener = Callable[[SplitResult, Login, LakeIOManager], Lake]


@dataclass(frozen=True)
class Protocol:
    open: Opener
    fields: frozenset[str]
    # A local folder or container that does not exist yet is an empty landing, as it always was; a folder
    # missing on a server is a wrong path.
    remote: bool = True


def _local(url: SplitResult, login: Login, lake_io_manager: LakeIOManager) -> Lake:
    return lake_io_manager.landing(url.geturl())


def _remote_lake(fs: fsspec.AbstractFileSystem, root: str, url: SplitResult) -> Lake:
    return Lake(fs=fs, root=root, display_root=url.geturl().rstrip("/"), polars_prefix="", polars_options=None)


def _ssh_key(private_key: str | None):
    import asyncssh

    if private_key is None:
        return None
    if os.path.isfile(private_key):
        return [private_key]
    return [asyncssh.import_private_key(private_key)]


def _sftp(url: SplitResult, login: Login, lake_io_manager: LakeIOManager) -> Lake:
    from sshfs import SSHFileSystem

    if login.known_hosts and not os.path.isfile(login.known_hosts):
        raise FileNotFoundError(f"known_hosts file {login.known_hosts} does not exist")
    # sshfs trusts every host key unless told otherwise; () is asyncssh's default, ~/.ssh/known_hosts.
    known_hosts = (login.known_hosts or ()) if login.host_key_check else None
    fs = SSHFileSystem(
        url.hostname,
        port=url.port or 22,
        username=login.username,
        password=login.password,
        client_keys=_ssh_key(login.private_key),
        known_hosts=known_hosts,
        timeout=login.timeout,
        skip_instance_cache=True,
    )
    return _remote_lake(fs, "/" + url.path.strip("/"), url)


class _VerifiedFTPS(FTPFileSystem):
    """fsspec's explicit FTPS, but checking the server's certificate: ftplib's own default context does not."""

    def _connect(self) -> None:
        self.ftp = ftplib.FTP_TLS(context=ssl.create_default_context(), timeout=self.timeout, encoding=self.encoding)
        self.ftp.connect(self.host, self.port)
        self.ftp.login(*self.cred)


def _ftp(url: SplitResult, login: Login, lake_io_manager: LakeIOManager) -> Lake:
    tls = url.scheme == "ftps"
    filesystem = _VerifiedFTPS if tls else FTPFileSystem
    # Without the listings cache, opening a file asks the server again, so one deleted since the listing is missing, not a failed RETR.
    fs = filesystem(
        url.hostname,
        port=url.port or 21,
        username=login.username,
        password=login.password,
        timeout=login.timeout,
        tls=tls,
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    return _remote_lake(fs, "/" + url.path.strip("/"), url)


def _webdav(url: SplitResult, login: Login, lake_io_manager: LakeIOManager) -> Lake:
    from webdav4.fsspec import WebdavFileSystem

    base = f"{'https' if url.scheme == 'webdavs' else 'http'}://{url.netloc}"
    auth = (login.username, login.password or "") if login.username else None
    fs = WebdavFileSystem(base, auth=auth, timeout=login.timeout)
    return _remote_lake(fs, url.path.strip("/"), url)


class _IndexFileSystem(HTTPFileSystem):
    """An HTML directory index as a folder: the links under it are its files, each with the size and
    ETag or Last-Modified a HEAD request gives (the index itself has neither), and its name unquoted."""

    async def _ls(self, url, detail=True, **kwargs):
        import asyncio

        links = [entry["name"] for entry in await super()._ls(url, detail=True, **kwargs)]
        files = [link for link in links if "?" not in link[len(url) :] and not link.endswith("/")]
        infos = await asyncio.gather(*(self._info(link) for link in files))
        return [
            {
                "name": link,
                "filename": unquote(link.rsplit("/", 1)[-1]),
                "type": "file",
                "size": info.get("size"),
                "etag": info.get("ETag") or info.get("Last-Modified"),
            }
            for link, info in zip(files, infos, strict=True)
        ]

    # HTTPFileSystem binds `ls` to its own `_ls` in its class body.
    ls = sync_wrapper(_ls)


def _http(url: SplitResult, login: Login, lake_io_manager: LakeIOManager) -> Lake:
    import aiohttp

    client = {"timeout": aiohttp.ClientTimeout(total=login.timeout)}
    if login.username:
        token = base64.b64encode(f"{login.username}:{login.password or ''}".encode()).decode()
        client["headers"] = {"Authorization": f"Basic {token}"}
    fs = _IndexFileSystem(simple_links=True, client_kwargs=client, skip_instance_cache=True)
    root = url.geturl().rstrip("/") + "/"
    return Lake(fs=fs, root=root, display_root=root, polars_prefix="", polars_options=None)


PROTOCOLS: dict[str, Protocol] = {
    "": Protocol(_local, frozenset(), remote=False),
    "file": Protocol(_local, frozenset(), remote=False),
    **{scheme: Protocol(_local, frozenset(), remote=False) for scheme in sorted(AZURE_SCHEMES)},
    "sftp": Protocol(_sftp, SSH),
    "ftp": Protocol(_ftp, SIGN_IN),
    "ftps": Protocol(_ftp, SIGN_IN),
    "webdav": Protocol(_webdav, SIGN_IN),
    "webdavs": Protocol(_webdav, SIGN_IN),
    "http": Protocol(_http, SIGN_IN),
    "https": Protocol(_http, SIGN_IN),
}


def _protocol(url: str) -> Protocol | None:
    return PROTOCOLS.get(urlsplit(url).scheme.lower())


def is_remote(url: str) -> bool:
    protocol = _protocol(url)
    return protocol is not None and protocol.remote


def landing_problem(url: str, connection: LandingConnection | None) -> str | None:
    """What is wrong with a landing URL and its `landing_connection`, checked when the definitions load."""
    parts = urlsplit(url)
    protocol = _protocol(url)
    if protocol is None:
        supported = ", ".join(f"{scheme}://" for scheme in PROTOCOLS if scheme)
        return f"`landing` {url!r}: scheme '{parts.scheme}' is not supported (fix: a local folder or one of {supported})"
    if not protocol.remote:
        if connection is not None:
            return (
                "`landing_connection` applies to sftp, ftp(s), webdav(s) and http(s) landings only "
                "(fix: remove it; a local folder needs none, ADLS uses the lake's credentials)"
            )
        return None
    if not parts.hostname:
        return f"`landing` {url!r} names no host (fix: {parts.scheme}://<host>[:port]/<folder>)"
    if parts.username or parts.password:
        bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        return (
            f"`landing` {bare!r} holds a user name or password in its address "
            "(fix: move them to landing_connection.username and landing_connection.password, as `${NAME}`)"
        )
    if connection is None:
        return None
    misplaced = sorted(connection.model_fields_set - protocol.fields)
    if misplaced:
        takes = ", ".join(sorted(protocol.fields))
        return f"`landing_connection.{misplaced[0]}` does not apply to {parts.scheme}:// (fix: remove it; {parts.scheme}:// takes {takes})"
    if connection.password is not None and connection.username is None:
        return "`landing_connection.password` needs `username` (fix: add landing_connection.username)"
    if not connection.host_key_check and connection.known_hosts:
        return "`landing_connection.host_key_check: false` ignores `known_hosts` (fix: remove one of them; checking host keys is the safe choice)"
    return None


def _login(connection: LandingConnection | None, secrets: SecretResolver) -> Login:
    connection = connection or LandingConnection()

    def resolve(value: str | None) -> str | None:
        return None if value is None else secrets.substitute(value)

    return Login(
        username=resolve(connection.username),
        password=resolve(connection.password),
        private_key=resolve(connection.private_key),
        known_hosts=resolve(connection.known_hosts),
        host_key_check=connection.host_key_check,
        timeout=connection.timeout_seconds,
    )


def open_landing(source: FileSource, secrets: SecretResolver, lake_io_manager: LakeIOManager) -> Lake:
    """The source's landing folder, signed in; a server that cannot be reached or refuses the login raises `LandingError`."""
    url = urlsplit(source.landing)
    protocol = PROTOCOLS[url.scheme.lower()]
    login = _login(source.landing_connection, secrets)
    try:
        return protocol.open(url, login, lake_io_manager)
    except Exception as err:
        raise landing_error(source, err, "cannot open the landing folder") from err


def _status(err: Exception) -> int | None:
    """The HTTP status of an aiohttp or webdav4 error."""
    return getattr(err, "status", None) or getattr(err, "status_code", None)


def _failure(err: Exception, source: FileSource) -> tuple[str, str, bool]:
    """(what went wrong, the fix, whether trying again may work) for an error of any landing protocol."""
    import aiohttp
    import asyncssh
    import httpx

    if isinstance(err, asyncssh.HostKeyNotVerifiable):
        where = (source.landing_connection and source.landing_connection.known_hosts) or "~/.ssh/known_hosts"
        return "the server's host key is not in known_hosts", f"add the server's key to {where} (ssh-keyscan), after checking its fingerprint", False
    refused_login = isinstance(err, PermissionError | asyncssh.PermissionDenied) or _status(err) in (401, 403)
    if refused_login or (isinstance(err, ftplib.error_perm) and str(err).startswith("530")):
        return (
            "the server refused the login",
            "check landing_connection.username and the secrets of landing_connection.password or private_key",
            False,
        )
    unreachable = (ConnectionError, TimeoutError, socket.gaierror, httpx.TransportError, aiohttp.ClientConnectionError, asyncssh.DisconnectError)
    if isinstance(err, unreachable):
        return "the host cannot be reached", "check the host and port, that the server is up, or raise landing_connection.timeout_seconds", True
    return "it failed", "see the error above", False


def landing_error(source: FileSource, err: Exception, doing: str) -> LandingError:
    """`err` as a message naming the source, the landing URL and the fix; secrets are masked."""
    if isinstance(err, LandingError):
        return err
    what, fix, transient = _failure(err, source)
    detail = str(err) or type(err).__name__
    message = f"source '{source.name}': {doing} {source.landing}: {what} ({type(err).__name__}: {detail}) (fix: {fix})"
    return LandingError(redact(message), transient=transient)
