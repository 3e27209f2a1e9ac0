"""The config of a `rest` source: a paginated JSON API, its auth, paging and retries."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from etl_resources.config.model import BaseSource


class ApiKeyAuth(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["api_key"]
    name: str = "X-API-KEY"
    location: Literal["header", "query"] = Field(default="header", alias="in")
    value: str


class BearerAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["bearer"]
    token: str


class BasicAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["basic"]
    username: str
    password: str


class ClientCredentialsAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: str
    client_secret: str
    scope: str | None = None


Auth = Annotated[ApiKeyAuth | BearerAuth | BasicAuth | ClientCredentialsAuth, Field(discriminator="type")]


class Pagination(BaseModel):
    """How to walk the pages; every style also stops on an empty page and, with `total_path`, at the total."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["none", "page", "offset", "cursor", "next_url", "link_header"] = "none"
    page_size: int = Field(default=1000, ge=1)
    page_param: str = "page"
    size_param: str = "page_size"
    first_page: int = 1
    offset_param: str = "offset"
    limit_param: str = "limit"
    cursor_param: str = "cursor"
    cursor_path: str | None = None
    cursor_header: str | None = None
    next_url_path: str | None = None
    total_path: str | None = None
    # A guard against an API that never says "last page"; reaching it fails the day rather than cutting it short.
    max_pages: int = Field(default=10_000, ge=1)

    @model_validator(mode="after")
    def _style_fields(self) -> "Pagination":
        if self.type == "cursor" and not (self.cursor_path or self.cursor_header):
            raise ValueError("cursor pagination needs `cursor_path` (a JSON path in the body) or `cursor_header`")
        if self.type == "next_url" and not self.next_url_path:
            raise ValueError("next_url pagination needs `next_url_path`, the JSON path of the next page's URL")
        return self


class Retry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_seconds: float = Field(default=1.0, ge=0)
    max_backoff_seconds: float = Field(default=30.0, ge=0)
    # The whole day's extract: every page, retry, wait and response body.
    max_total_seconds: float = Field(default=3600.0, gt=0)
    timeout_seconds: float = Field(default=30.0, gt=0)


class RestSource(BaseSource):
    """A paginated JSON API; `params` may use {start}, {end} (ISO datetimes), {start_date}, {end_date}, {last_date}."""

    kind: Literal["rest"]
    base_url: str
    path: str = ""
    params: dict[str, str | int | float | bool] = {}
    headers: dict[str, str] = {}
    auth: Auth | None = None
    pagination: Pagination = Pagination()
    records_path: str | None = None
    nested: Literal["json", "flatten"] = "json"
    retry: Retry = Retry()
    page_delay_seconds: float = Field(default=0.0, ge=0)
    # Redirects and next-page URLs to another scheme, host or port; credentials never go there either way.
    follow_redirects: Literal["same_origin", "any"] = "same_origin"

    @property
    def protocol(self) -> str:
        return "rest"

    @property
    def default_description(self) -> str:
        return f"Records from {self.base_url.rstrip('/')}/{self.path.lstrip('/')}"
