"""The config of a `soap` source: an operation of a WSDL service, called once per day with templated arguments."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from etl_resources.config.model import BaseSource
from etl_resources.sources.records import Nested
from etl_resources.sources.rest.model import BasicAuth


class WsSecurityAuth(BaseModel):
    """A WS-Security UsernameToken in the SOAP header; `digest` sends a password digest instead of the password."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["ws_security"]
    username: str
    password: str
    digest: bool = False


SoapAuth = Annotated[BasicAuth | WsSecurityAuth, Field(discriminator="type")]


class SoapSource(BaseSource):
    """An operation of a WSDL service; string `arguments` may use {start}, {end} (ISO datetimes), {start_date},
    {end_date}, {last_date}, as a REST source's `params` do."""

    kind: Literal["soap"]
    wsdl: str = Field(min_length=1)
    service: str | None = None
    port: str | None = None
    # The endpoint to call instead of the port's soap:address, for a WSDL that names an internal host.
    address: str | None = None
    operation: str = Field(min_length=1)
    arguments: dict[str, Any] = {}
    records: str | None = None
    nested: Nested = "json"
    auth: SoapAuth | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)

    @property
    def protocol(self) -> str:
        return "soap"

    @property
    def default_description(self) -> str:
        return f"Records of {self.operation} from {self.wsdl}"
