"""The config of a `kafka` source: a topic of a Kafka cluster (or Azure Event Hubs' Kafka endpoint), read a day at a time."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from etl_resources.secrets import SECRET_REF
from etl_resources.sources.streams import StreamSource

EVENT_HUBS_PORT = 9093
EVENT_HUBS_USERNAME = "$ConnectionString"


class EventHubs(BaseModel):
    """Azure Event Hubs' Kafka endpoint: SASL_SSL with PLAIN, the user `$ConnectionString`, the connection string as password."""

    model_config = ConfigDict(extra="forbid")

    connection_string: str


def _is_reference(value: str) -> bool:
    return SECRET_REF.fullmatch(value.strip()) is not None


class KafkaSource(StreamSource):
    """A Kafka topic; every partition (or those in `partitions`) is read from the day's start by the broker's time index."""

    kind: Literal["kafka"]
    bootstrap_servers: str
    topic: str = Field(min_length=1)
    partitions: list[int] | None = Field(default=None, min_length=1)
    # Only names the consumer to the broker (quotas, ACLs): offsets are never committed, a day is found by time.
    group_id: str | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_location: str | None = None
    event_hubs: EventHubs | None = None
    # Bounds each call to the broker (metadata, offsets by time, watermarks): an unreachable broker fails this fast.
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _security(self) -> "KafkaSource":
        if self.event_hubs is not None:
            return self._event_hubs()
        sasl = self.security_protocol.startswith("SASL_")
        given = [name for name in ("sasl_mechanism", "sasl_username", "sasl_password") if getattr(self, name) is not None]
        if not sasl and given:
            raise ValueError(
                f"`{given[0]}` applies to security_protocol SASL_PLAINTEXT or SASL_SSL, not {self.security_protocol} "
                "(fix: set `security_protocol: SASL_SSL`, or remove the sasl_ fields)"
            )
        if sasl:
            missing = [name for name in ("sasl_mechanism", "sasl_username", "sasl_password") if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    f"security_protocol {self.security_protocol} needs `{missing[0]}` "
                    "(fix: e.g. sasl_mechanism: SCRAM-SHA-512, sasl_username: etl, sasl_password: ${KAFKA_PASSWORD})"
                )
            if not _is_reference(self.sasl_password):
                raise ValueError("`sasl_password` must be a secret reference, not the password itself (fix: sasl_password: ${KAFKA_PASSWORD})")
        if self.ssl_ca_location is not None and not self.security_protocol.endswith("SSL"):
            raise ValueError(f"`ssl_ca_location` applies to security_protocol SSL or SASL_SSL, not {self.security_protocol} (fix: set one, or remove it)")
        return self

    def _event_hubs(self) -> "KafkaSource":
        mixed = [name for name in ("sasl_mechanism", "sasl_username", "sasl_password") if getattr(self, name) is not None]
        if mixed or self.security_protocol != "PLAINTEXT":
            field = mixed[0] if mixed else "security_protocol"
            raise ValueError(f"`event_hubs` sets the security itself (SASL_SSL, PLAIN, user {EVENT_HUBS_USERNAME}); remove `{field}`")
        if not _is_reference(self.event_hubs.connection_string):
            raise ValueError(
                "`event_hubs.connection_string` must be a secret reference, not the connection string itself (fix: connection_string: ${EVENT_HUBS_CONNECTION})"
            )
        if not self.bootstrap_servers.strip().endswith(f":{EVENT_HUBS_PORT}"):
            raise ValueError(
                f"Event Hubs' Kafka endpoint listens on port {EVENT_HUBS_PORT}, not at {self.bootstrap_servers!r} "
                f"(fix: bootstrap_servers: <namespace>.servicebus.windows.net:{EVENT_HUBS_PORT})"
            )
        return self

    @property
    def consumer_group(self) -> str:
        return self.group_id or f"etl-{self.name}"

    @property
    def protocol(self) -> str:
        return "kafka"

    @property
    def default_description(self) -> str:
        return f"Messages of Kafka topic {self.topic} on {self.bootstrap_servers}"
