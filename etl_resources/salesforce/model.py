"""The config of a Salesforce export: the warehouse query, the object, and how to sign in."""

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from etl_resources.config.model import Cron, Identifier, SourceName, Target


class SalesforceConnection(BaseModel):
    """Username, password and security token (OAuth password flow), or a connected app's client credentials."""

    model_config = ConfigDict(extra="forbid")

    domain: str = "login"  # login (production), test (sandbox), or a My Domain host / URL
    client_id: str | None = None
    client_secret: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str = ""
    api_version: Annotated[str, StringConstraints(pattern=r"^v\d{2,3}\.\d$")] = "v60.0"

    @model_validator(mode="after")
    def _one_way_in(self) -> "SalesforceConnection":
        if not self.client_id or not self.client_secret:
            raise ValueError("Salesforce needs client_id and client_secret (a connected app), with username and password for the password flow")
        if bool(self.username) != bool(self.password):
            raise ValueError("give username and password together, or neither for the client-credentials flow")
        return self

    @property
    def login_url(self) -> str:
        if self.domain.startswith(("https://", "http://")):
            return self.domain.rstrip("/")
        return f"https://{self.domain}" if "." in self.domain else f"https://{self.domain}.salesforce.com"


class SalesforceExport(BaseModel):
    """Reverse ETL: each week, rows a warehouse query returns are upserted into a Salesforce object by external ID."""

    model_config = ConfigDict(extra="forbid")

    name: SourceName
    kind: Literal["salesforce"] = "salesforce"
    description: str | None = None
    # SELECT over loaded tables; :start and :end bind the week as dates (start inclusive, end exclusive).
    query: str
    reads: list[SourceName] = Field(min_length=1)
    object: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")]
    external_id_field: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")]
    connection: SalesforceConnection
    start_date: dt.date
    batch_size: int = Field(default=10_000, ge=1, le=150_000)
    max_failed_share: float = Field(default=0.10, ge=0, le=1)
    # When the week that just ended (Monday to Sunday, UTC) is sent; null for no schedule.
    schedule: Cron | None = "0 3 * * 1"
    group: Identifier | None = None

    @property
    def protocol(self) -> str:
        return "salesforce"

    @property
    def target(self) -> Target:
        return Target(table=self.object)
