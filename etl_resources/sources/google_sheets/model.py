"""The config of a `google_sheets` source: a range of a spreadsheet read through the Sheets API v4, header row as columns."""

from typing import Literal

from pydantic import Field, field_validator

from etl_resources.config.model import BaseSource
from etl_resources.secrets import SECRET_REF

DEFAULT_API_URL = "https://sheets.googleapis.com"


def range_problem(a1: str) -> str | None:
    """Why an A1 range's sheet part is not quoted the way the API reads it, or None."""
    if not a1.startswith("'"):
        return None
    quoted = a1 if a1.endswith("'") else a1.rpartition("!")[0]
    inner = quoted[1:-1]
    if len(quoted) < 2 or not quoted.endswith("'") or inner.replace("''", "").count("'"):
        return f"range {a1!r}: a quoted sheet name ends with a single quote, and a quote inside it is doubled, e.g. 'Bob''s orders'!A1:Z"
    return None


class GoogleSheetsSource(BaseSource):
    """A range of a Google spreadsheet, read whole on every run: each day's partition is the sheet as read that day."""

    kind: Literal["google_sheets"]
    spreadsheet_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    # A1 notation; a sheet name with spaces or other characters in single quotes: 'Orders 2026'!A1:Z
    range: str = Field(min_length=1)
    # A `${NAME}` secret holding the service account's JSON key (its text, or the path of the key file).
    service_account: str
    # The row of the range that names the columns (1: its first row); the rows above it are skipped.
    header_row: int = Field(default=1, ge=1)
    value_render: Literal["UNFORMATTED_VALUE", "FORMATTED_VALUE"] = "UNFORMATTED_VALUE"
    # FORMATTED_STRING: dates and times as the sheet shows them (text a contract reads with `format:`);
    # SERIAL_NUMBER: as days since 1899-12-30, a number. Only UNFORMATTED_VALUE reads it.
    date_time_render: Literal["FORMATTED_STRING", "SERIAL_NUMBER"] = "FORMATTED_STRING"
    api_url: str = DEFAULT_API_URL
    # Where the signed assertion is exchanged for a token; default: the key's `token_uri`.
    token_url: str | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_seconds: float = Field(default=1.0, ge=0, le=60)

    @field_validator("service_account")
    @classmethod
    def _a_secret(cls, value: str) -> str:
        if not SECRET_REF.fullmatch(value.strip()):
            raise ValueError(
                "must be a `${NAME}` secret reference to the service account's JSON key, not the key itself "
                "(fix: store the key's JSON, or its file's path, as a secret and write e.g. service_account: ${sheets-key})"
            )
        return value.strip()

    @field_validator("range")
    @classmethod
    def _quoted(cls, value: str) -> str:
        problem = range_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("api_url", "token_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an http(s) URL (fix: start it with https://)")
        return value

    @property
    def protocol(self) -> str:
        return "google_sheets"

    @property
    def default_description(self) -> str:
        return f"Rows of {self.range} in Google spreadsheet {self.spreadsheet_id}"
