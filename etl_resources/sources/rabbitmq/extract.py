"""Read a day of a RabbitMQ stream with rstream (the stream protocol): subscribe at the day's start by the broker's
chunk time and hand the messages to the shared day reader in log order.

rstream is asyncio; the day reader is a plain iterator. Each `next()` runs a private event loop until the next
message has arrived (or `idle_seconds` passed with none: the stream is exhausted — RabbitMQ 3.10 cannot be asked
for a stream's last offset), and the generator's `finally` closes the consumer and the loop.
"""

import asyncio
import datetime as dt
import json
import ssl
from collections.abc import Iterator
from typing import Any

import pika
import pika.exceptions
import polars as pl
from rstream import AMQPMessage, Consumer, ConsumerOffsetSpecification, OffsetType, amqp_decoder
from rstream.exceptions import AuthenticationFailure, SASLAuthenticationFailureLoopback, ServerError, StreamDoesNotExist, VirtualHostAccessFailure

from etl_resources.secrets import SecretStore, redact
from etl_resources.sources.rabbitmq.model import RabbitMQSource
from etl_resources.sources.streams import Message, StreamError, day_frames

# Messages received but not yet read; the broker's deliveries wait while it is full.
INBOX_SIZE = 10_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def extract_rabbitmq(source: RabbitMQSource, secrets: SecretStore, window: tuple[dt.datetime, dt.datetime], log: Any) -> Iterator[pl.DataFrame]:
    password = secrets.substitute(source.password)
    yield from day_frames(source, [stream_messages(source, password, window[0])], window, log)


def stream_messages(source: RabbitMQSource, password: str, start: dt.datetime) -> Iterator[Message]:
    """The stream's messages from the first chunk the broker logged at or after `start`, until it is idle."""
    loop = asyncio.new_event_loop()
    consumer = Consumer(
        source.host,
        source.port,
        username=source.username,
        password=password,
        vhost=source.vhost,
        ssl_context=ssl.create_default_context() if source.tls else None,
        connection_name=f"etl-{source.name}",
    )
    inbox: asyncio.Queue = asyncio.Queue(INBOX_SIZE)

    async def deliver(message: AMQPMessage, context: Any) -> None:
        await inbox.put((message, context.offset, context.timestamp))

    try:
        if not loop.run_until_complete(_bounded(source, _stream_exists(consumer, source))):
            raise _missing(source, password)
        offset = ConsumerOffsetSpecification(OffsetType.TIMESTAMP, int((start - EPOCH).total_seconds() * 1000))
        subscribe = consumer.subscribe(source.stream, deliver, decoder=amqp_decoder, offset_specification=offset)
        loop.run_until_complete(_bounded(source, subscribe))
        while True:
            try:
                message, offset_in_log, chunk_ms = loop.run_until_complete(asyncio.wait_for(inbox.get(), source.idle_seconds))
            except TimeoutError:
                return
            yield as_message(source.stream, message, offset_in_log, chunk_ms)
    finally:
        try:
            loop.run_until_complete(asyncio.wait_for(consumer.close(), source.connect_timeout_seconds))
        except (OSError, ServerError, TimeoutError):
            pass  # the connection is gone already: there is nothing left to release on the broker
        loop.close()


async def _stream_exists(consumer: Consumer, source: RabbitMQSource) -> bool:
    return await consumer.stream_exists(source.stream)


async def _bounded(source: RabbitMQSource, step: Any) -> Any:
    """A step of connecting, with rstream's errors said in the source's terms."""
    where = f"source '{source.name}'"
    try:
        return await asyncio.wait_for(step, source.connect_timeout_seconds)
    except (AuthenticationFailure, SASLAuthenticationFailureLoopback):
        raise StreamError(
            f"{where}, field 'password': RabbitMQ on {source.address} refused user {source.username!r} "
            "(fix: check `username` and the secret `password` refers to)"
        ) from None
    except VirtualHostAccessFailure:
        raise StreamError(
            f"{where}, field 'vhost': user {source.username!r} may not use virtual host {source.vhost!r} on {source.address} "
            "(fix: check `vhost`, or grant the user permissions on it)"
        ) from None
    except StreamDoesNotExist:
        raise StreamError(f"{where}, field 'stream': stream {source.stream!r} does not exist on {source.address} (fix: check `stream`)") from None
    except (OSError, TimeoutError) as err:
        reason = f"no answer within {source.connect_timeout_seconds:g}s" if isinstance(err, TimeoutError) else redact(str(err) or type(err).__name__)
        raise StreamError(
            f"{where}, field 'host': cannot reach RabbitMQ's stream port on {source.address} ({reason}) "
            "(fix: check `host` and `port` — the stream port, 5552 by default, opened by the rabbitmq_stream plugin — and `tls`)"
        ) from None


def _missing(source: RabbitMQSource, password: str) -> StreamError:
    """Why there is no stream of that name: a queue of another type has it, or nothing does."""
    where = f"source '{source.name}', field 'stream'"
    amqp = f"{source.host}:{source.amqp_port}"
    if _queue_exists(source, password):
        return StreamError(
            f"{where}: queue {source.stream!r} on {amqp} is a classic (or quorum) queue, not a stream: it forgets a message once "
            "it is consumed, so a day cannot be read again; declare it with x-queue-type: stream (or bind a stream to the "
            "exchange that feeds it) and name that stream in `stream`"
        )
    return StreamError(
        f"{where}: stream {source.stream!r} does not exist on {source.address} (vhost {source.vhost!r}) "
        "(fix: check `stream` and `vhost`, or declare the queue with x-queue-type: stream)"
    )


def _queue_exists(source: RabbitMQSource, password: str) -> bool:
    """Whether the vhost has a queue of that name, asked over AMQP 0-9-1; False when AMQP cannot be reached."""
    params = pika.ConnectionParameters(
        source.host,
        source.amqp_port,
        source.vhost,
        pika.PlainCredentials(source.username, password),
        ssl_options=pika.SSLOptions(ssl.create_default_context(), source.host) if source.tls else None,
        connection_attempts=1,
        socket_timeout=source.connect_timeout_seconds,
        stack_timeout=source.connect_timeout_seconds,
    )
    try:
        connection = pika.BlockingConnection(params)
    except pika.exceptions.AMQPError:
        return False
    try:
        connection.channel().queue_declare(source.stream, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


def as_message(stream: str, message: AMQPMessage, offset: int, chunk_ms: int) -> Message:
    """An AMQP 1.0 message of the stream as the day reader's `Message`.

    `logged` is the time of the chunk the broker appended it in; `timestamp` the message's `creation_time` when the
    producer set one (AMQP 0-9-1's `timestamp` arrives as it), else the chunk's time. The key is the `subject`, else
    the `message_id`; headers are the application properties (a null one is left out)."""
    logged = _from_ms(chunk_ms)
    properties = message.properties
    created = properties.creation_time if properties is not None else None
    key = (properties.subject or properties.message_id) if properties is not None else None
    return Message(
        stream=stream,
        partition=None,
        offset=offset,
        timestamp=_from_ms(created) if created is not None else logged,
        body=_body(message),
        key=key if key is None or isinstance(key, (bytes, str)) else str(key),
        headers={_name(name): _header(value) for name, value in (message.application_properties or {}).items() if value is not None},
        logged=logged,
    )


def _from_ms(ms: int) -> dt.datetime:
    return EPOCH + dt.timedelta(milliseconds=ms)


def _body(message: AMQPMessage) -> bytes:
    """The data section(s) as sent; an amqp-value or sequence body (from AMQP 1.0 producers) as text or JSON."""
    if message.body is not None:
        return b"".join(message.body) if isinstance(message.body, list) else bytes(message.body)
    value = message.value if message.value is not None else message.sequence
    if value is None:
        return b""
    if isinstance(value, (bytes, str)):
        return value if isinstance(value, bytes) else value.encode()
    return json.dumps(value, default=str, ensure_ascii=False).encode()


def _name(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def _header(value: Any) -> Any:
    return value if isinstance(value, (bytes, str, int, float, bool)) else str(value)
