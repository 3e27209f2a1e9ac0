"""Read a JetStream stream with nats-py from the day's start: an ephemeral pull consumer that delivers by start time.

nats-py is asyncio and the extractor a plain generator, so the client lives on an event loop of its own thread and
each step is awaited from the generator; the consumer and the connection are released when the generator closes.
"""

import asyncio
import datetime as dt
import ssl
import threading
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from etl_resources.secrets import SecretStore, redact
from etl_resources.sources.nats.model import NatsSource
from etl_resources.sources.streams import Message, StreamError

FETCH_BATCH = 500
# The server removes a consumer left behind by a killed run after this long without a fetch.
CONSUMER_IDLE_SECONDS = 60.0
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Loop:
    """An event loop on a daemon thread; `run` awaits a coroutine there, bounded by `seconds`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="nats-client", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any], seconds: float) -> Any:
        return asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, seconds), self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def logged_at(msg: Msg) -> dt.datetime:
    """The server's time of the message to the microsecond, from the nanoseconds in its reply subject
    (nats-py's `metadata.timestamp` goes through a float, which can be a microsecond off)."""
    tokens = msg.reply.split(".")
    nanos = int(tokens[7] if len(tokens) == 9 else tokens[9])
    return EPOCH + dt.timedelta(microseconds=nanos // 1000)


def as_message(source: NatsSource, msg: Msg) -> Message:
    logged = logged_at(msg)
    return Message(
        stream=source.stream,
        partition=None,
        offset=msg.metadata.sequence.stream,
        timestamp=logged,
        body=msg.data,
        key=msg.subject,
        headers=dict(msg.headers or {}),
        logged=logged,
    )


def _tls(source: NatsSource) -> ssl.SSLContext | None:
    if source.tls is None and not any(url.startswith(("tls://", "wss://")) for url in source.servers):
        return None
    context = ssl.create_default_context(cafile=source.tls.ca_file if source.tls else None)
    if source.tls and source.tls.cert_file:
        context.load_cert_chain(source.tls.cert_file, source.tls.key_file)
    return context


def sign_in(source: NatsSource, secrets: SecretStore) -> dict[str, Any]:
    if source.username:
        return {"user": secrets.substitute(source.username), "password": secrets.substitute(source.password or "")}
    if source.token:
        return {"token": secrets.substitute(source.token)}
    if source.credentials_file:
        return {"user_credentials": secrets.substitute(source.credentials_file)}
    return {}


def _credential_fields(source: NatsSource) -> str:
    given = [f"'{name}'" for name in ("username", "password", "token", "credentials_file") if getattr(source, name)]
    if not given:
        return "field 'username'/'password', 'token' or 'credentials_file' (none given)"
    return f"field {given[0]}" if len(given) == 1 else f"fields {' and '.join(given)}"


async def _connect(source: NatsSource, secrets: SecretStore, errors: list[str]) -> Client:
    async def remember(err: Exception) -> None:
        errors.append(f"{type(err).__name__}: {err}")

    return await nats.connect(
        source.servers,
        connect_timeout=source.connect_timeout_seconds,
        allow_reconnect=False,
        max_reconnect_attempts=1,
        error_cb=remember,
        tls=_tls(source),
        tls_hostname=source.tls.hostname if source.tls else None,
        **sign_in(source, secrets),
    )


def connect(source: NatsSource, secrets: SecretStore, loop: Loop) -> Client:
    """A connection, or a StreamError that names the field to fix: the credentials or the servers."""
    errors: list[str] = []
    where = ", ".join(source.servers)
    try:
        return loop.run(_connect(source, secrets, errors), source.connect_timeout_seconds * len(source.servers) + 5)
    except nats.errors.Error as err:
        if "authorization" in str(err).lower() or "authentication" in str(err).lower():
            raise StreamError(
                f"source '{source.name}', {_credential_fields(source)}: NATS at {where} refused the sign-in ({err}) "
                "(fix: check the user and password, token or credentials file, and the secrets they reference)"
            ) from None
        reason = errors[-1] if errors else f"{type(err).__name__}: {err}"
        raise StreamError(_unreachable(source, where, reason)) from None
    except (OSError, TimeoutError) as err:
        raise StreamError(_unreachable(source, where, f"{type(err).__name__}: {err}")) from None


def _unreachable(source: NatsSource, where: str, reason: str) -> str:
    return redact(
        f"source '{source.name}', field 'servers': no NATS server answered at {where} within "
        f"connect_timeout_seconds={source.connect_timeout_seconds:g} ({reason}) (fix: check the host and port, and that the server runs)"
    )


async def _missing_stream(source: NatsSource, js: Any, servers: str) -> StreamError:
    names = sorted(info.config.name for info in await js.streams_info())
    known = ", ".join(names) if names else "none"
    return StreamError(
        f"source '{source.name}', field 'stream': stream '{source.stream}' does not exist on NATS at {servers}; "
        f"streams there: {known} (fix: correct `stream`, or create it with `nats stream add`)"
    )


async def open_consumer(source: NatsSource, client: Client, start: dt.datetime) -> tuple[Any, str, int]:
    """An ephemeral pull consumer from the first message the server logged at or after `start`, acking nothing
    (a re-run reads the same messages), and how many messages it has to deliver now."""
    js = client.jetstream()
    try:
        await js.stream_info(source.stream)
    except nats.js.errors.NotFoundError:
        raise await _missing_stream(source, js, ", ".join(source.servers)) from None
    name = f"etl_{source.name}_{uuid.uuid4().hex[:12]}"
    config = ConsumerConfig(
        name=name,
        deliver_policy=DeliverPolicy.BY_START_TIME,
        opt_start_time=start,
        ack_policy=AckPolicy.NONE,
        filter_subject=source.subject,
        inactive_threshold=CONSUMER_IDLE_SECONDS,
        mem_storage=True,
        num_replicas=1,
    )
    try:
        info = await js.add_consumer(source.stream, config)
    except nats.js.errors.BadRequestError as err:
        raise StreamError(
            f"source '{source.name}', field 'subject': the server refused a consumer on stream '{source.stream}' "
            f"with subject {source.subject!r}: {err.description} (fix: use a subject the stream holds)"
        ) from None
    subscription = await js.pull_subscribe_bind(consumer=name, stream=source.stream)
    return subscription, name, info.num_pending


async def _release(client: Client, stream: str, consumer: str | None) -> None:
    try:
        if consumer is not None:
            await client.jetstream().delete_consumer(stream, consumer)
    except nats.errors.Error:
        pass  # the server drops it anyway after CONSUMER_IDLE_SECONDS
    finally:
        await client.close()


def stream_messages(source: NatsSource, secrets: SecretStore, start: dt.datetime) -> Iterator[Message]:
    """The stream's messages (matching `subject`) from `start` in stream order, until the last one the stream held
    when it was reached (`num_pending` 0) or `idle_seconds` pass with none."""
    loop = Loop()
    client: Client | None = None
    consumer: str | None = None
    try:
        client = connect(source, secrets, loop)
        subscription, consumer, pending = loop.run(open_consumer(source, client, start), source.connect_timeout_seconds + 30)
        while pending:
            try:
                batch = loop.run(subscription.fetch(FETCH_BATCH, timeout=source.idle_seconds), source.idle_seconds + 30)
            except (nats.errors.TimeoutError, TimeoutError):
                return
            for msg in batch:
                pending = msg.metadata.num_pending
                yield as_message(source, msg)
                if pending == 0:
                    return
    finally:
        if client is not None:
            try:
                loop.run(_release(client, source.stream, consumer), 10)
            except (nats.errors.Error, TimeoutError, OSError):
                pass
        loop.close()
