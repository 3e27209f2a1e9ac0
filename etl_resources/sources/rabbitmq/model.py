"""The config of a `rabbitmq` source: a RabbitMQ stream queue (`x-queue-type: stream`), read over the stream protocol."""

from typing import Literal

from pydantic import Field

from etl_resources.sources.streams import StreamSource


class RabbitMQSource(StreamSource):
    """A stream on a RabbitMQ broker with the `rabbitmq_stream` plugin; a day is read again from its start offset.

    `password` is a `${NAME}` secret reference; `amqp_port` is only used to tell a user whose `stream` names a
    classic queue why it cannot be read (a classic queue forgets what it delivered)."""

    kind: Literal["rabbitmq"]
    host: str
    port: int = Field(default=5552, ge=1, le=65535)
    amqp_port: int = Field(default=5672, ge=1, le=65535)
    vhost: str = "/"
    stream: str = Field(min_length=1)
    username: str
    password: str
    tls: bool = False
    # Connecting, signing in and subscribing; a broker that does not answer fails the day after this long.
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @property
    def protocol(self) -> str:
        return "rabbitmq"

    @property
    def default_description(self) -> str:
        return f"Messages of the RabbitMQ stream {self.stream!r} on {self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
