"""The config of a `mongodb` source: a collection, optionally filtered, read whole or by a date field per day."""

import json
from typing import Any, Literal

from bson import json_util
from pydantic import Field, field_validator, model_validator

from etl_resources.config.model import BaseSource
from etl_resources.secrets import SECRET_REF
from etl_resources.sources.records import Nested

SCHEMES = ("mongodb://", "mongodb+srv://")


def split_url(url: str) -> tuple[str, str | None, str | None]:
    """`url` without its user:password, the user and the password (as written, maybe `${NAME}` references)."""
    scheme = next((scheme for scheme in SCHEMES if url.startswith(scheme)), "")
    rest = url[len(scheme) :]
    cut = min((rest.find(mark) for mark in "/?" if mark in rest), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, hosts = authority.rpartition("@")
    if not at:
        return url, None, None
    user, colon, password = userinfo.partition(":")
    return f"{scheme}{hosts}{tail}", user, password if colon else None


def _no_dates(value: Any) -> Any:
    raise TypeError(f"{value!r} is a YAML {type(value).__name__}; write it as Extended JSON, e.g. {{$date: '2026-01-01T00:00:00Z'}}")


def bson_filter(mapping: dict[str, Any]) -> dict[str, Any]:
    """A filter or projection from the sources file as BSON: Extended JSON (`$date`, `$oid`, `$numberDecimal`) read."""
    return json_util.loads(json.dumps(mapping, default=_no_dates), json_options=json_util.JSONOptions(tz_aware=True))


class MongoSource(BaseSource):
    """A collection of a MongoDB database: every document (`snapshot`) or those whose `timestamp_field` is in the day."""

    kind: Literal["mongodb"]
    # The password, if any, is a `${NAME}` secret: mongodb://etl:${SHOP_MONGO_PASSWORD}@host:27017/?authSource=admin.
    url: str
    database: str = Field(min_length=1)
    collection: str = Field(min_length=1)
    filter: dict[str, Any] = {}
    projection: dict[str, Any] | None = None
    mode: Literal["snapshot", "incremental"] = "snapshot"
    timestamp_field: str | None = None
    nested: Nested = "json"
    # How long to look for a server before failing the day (serverSelectionTimeoutMS and connectTimeoutMS).
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # How long one answer of the server (a batch of the cursor) may take: a server that stops answering mid-read
    # fails the day instead of holding the run (socketTimeoutMS).
    read_timeout_seconds: float = Field(default=600.0, gt=0, le=86_400)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if SECRET_REF.fullmatch(url.strip()):
            return url.strip()
        if not url.startswith(SCHEMES):
            raise ValueError("`url` must start with mongodb:// or mongodb+srv://, e.g. mongodb://etl:${SHOP_MONGO_PASSWORD}@db.example.net:27017/")
        _, _, password = split_url(url)
        if password is not None and not SECRET_REF.fullmatch(password):
            raise ValueError("the password in `url` must be a secret reference, not the password itself (fix: mongodb://user:${MY_MONGO_PASSWORD}@host/)")
        return url

    @field_validator("filter", "projection")
    @classmethod
    def _extended_json(cls, mapping: dict[str, Any] | None) -> dict[str, Any] | None:
        if mapping is not None:
            try:
                bson_filter(mapping)
            except (TypeError, ValueError) as err:
                raise ValueError(f"not a MongoDB document in Extended JSON: {err}") from None
        return mapping

    @model_validator(mode="after")
    def _incremental(self) -> "MongoSource":
        if self.mode == "incremental" and not self.timestamp_field:
            raise ValueError("mode `incremental` needs `timestamp_field`: the date field whose value places a document in a day")
        if self.mode == "snapshot" and self.timestamp_field:
            raise ValueError("`timestamp_field` is only read with `mode: incremental`; remove it or set the mode")
        return self

    @property
    def protocol(self) -> str:
        return "mongodb"

    @property
    def default_description(self) -> str:
        return f"{self.mode.capitalize()} extract of collection {self.database}.{self.collection} from mongodb"
