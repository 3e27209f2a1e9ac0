"""The config of a `nats` source: a NATS JetStream stream, read by the time the server logged each message."""

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from etl_resources.sources.streams import StreamSource

SCHEMES = ("nats", "tls", "ws", "wss")
# JetStream refuses these in a stream's name: they are subject separators and wildcards.
STREAM_NAME = re.compile(r"^[^\s.*>/\\]+$")
# One URL or a list of them, as the sources file may say either; an editor should accept both.
Servers = Annotated[
    list[str], WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}], "title": "Servers"})
]


class NatsTls(BaseModel):
    """TLS to the server: the CA that vouches for it and, for mutual TLS, the client's certificate and key (file paths)."""

    model_config = ConfigDict(extra="forbid")

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    # The name the server's certificate must carry, when the URL's host is an address or another name.
    hostname: str | None = None

    @model_validator(mode="after")
    def _cert_with_key(self) -> "NatsTls":
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("mutual TLS needs both `cert_file` and `key_file`")
        return self


class NatsSource(StreamSource):
    """A JetStream stream, optionally one subject filter of it; a day is the messages from the day's start on."""

    kind: Literal["nats"]
    servers: Servers = Field(min_length=1)
    stream: str
    subject: str | None = None
    # One way to sign in: a user and password, a token, or a NATS credentials file (.creds: a JWT and an NKey seed).
    username: str | None = None
    password: str | None = None
    token: str | None = None
    credentials_file: str | None = None
    tls: NatsTls | None = None
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)

    @field_validator("servers", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("servers")
    @classmethod
    def _server_urls(cls, servers: list[str]) -> list[str]:
        for url in servers:
            parts = urlsplit(url)
            if parts.scheme not in SCHEMES or not parts.hostname:
                raise ValueError(f"{url!r} is not a NATS server URL (fix: write it as nats://host:4222; tls://, ws:// and wss:// also work)")
            if parts.username or parts.password:
                raise ValueError(f"{url!r} holds a user or password; give them as `username` and `password: ${{SECRET}}` instead, so they stay out of logs")
        return servers

    @field_validator("stream")
    @classmethod
    def _stream_name(cls, name: str) -> str:
        if not STREAM_NAME.match(name):
            raise ValueError(f"{name!r} is not a JetStream stream name: it may not hold spaces, '.', '*', '>', '/' or '\\'")
        return name

    @model_validator(mode="after")
    def _one_sign_in(self) -> "NatsSource":
        if bool(self.username) != bool(self.password):
            raise ValueError("`username` and `password` go together (fix: give both, the password as a ${SECRET} reference)")
        ways = [name for name, value in (("username", self.username), ("token", self.token), ("credentials_file", self.credentials_file)) if value]
        if len(ways) > 1:
            raise ValueError(f"give one way to sign in, not {' and '.join(ways)}")
        return self

    @property
    def protocol(self) -> str:
        return "nats"

    @property
    def default_description(self) -> str:
        filtered = f", subject {self.subject}" if self.subject else ""
        return f"Messages of NATS JetStream stream {self.stream}{filtered}"
