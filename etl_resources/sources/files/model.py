"""The config of a `files` source: files dropped into a landing folder, one day per file name."""

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from etl_resources.config.model import BaseSource


class LandingConnection(BaseModel):
    """How to sign in to a remote landing folder (SFTP, FTP/FTPS, WebDAV, HTTP). Secrets are `${NAME}`
    references, resolved when a run or the sensor opens the folder."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = None
    password: str | None = None
    # SFTP: the private key's text (usually `${NAME}`) or the path of a key file.
    private_key: str | None = None
    # SFTP: the known_hosts file that vouches for the server; without it, ~/.ssh/known_hosts.
    known_hosts: str | None = None
    # SFTP: false accepts any host key, so a machine in the middle can read the password and the files. Unsafe.
    host_key_check: bool = True
    timeout_seconds: float = Field(default=30, gt=0, le=3600)


class FileSource(BaseSource):
    """Files dropped into a landing folder or ADLS container (CSV, JSON lines, Parquet); each file belongs to
    the day its name says, through `date_pattern`, and a day's partition holds every file of that day."""

    kind: Literal["files"]
    landing: str
    landing_connection: LandingConnection | None = None
    pattern: str = "*"
    format: Literal["csv", "jsonl", "parquet"] | None = None
    date_pattern: str = r"(?P<date>\d{4}-\d{2}-\d{2})"
    csv_delimiter: Annotated[str, StringConstraints(min_length=1, max_length=1)] = ","

    @model_validator(mode="after")
    def _typed_by_contract(self) -> "FileSource":
        if self.contract is None:
            raise ValueError("a files source needs a `contract`: CSV and JSON lines carry no types, and malformed rows need a place to go")
        try:
            compiled = re.compile(self.date_pattern)
        except re.error as err:
            raise ValueError(f"`date_pattern` is not a regular expression: {err}") from None
        if "date" not in compiled.groupindex:
            raise ValueError("`date_pattern` needs a named group `date` that matches YYYY-MM-DD, e.g. (?P<date>\\d{4}-\\d{2}-\\d{2})")
        from etl_resources.sources.files.landing import landing_problem

        problem = landing_problem(self.landing, self.landing_connection)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def protocol(self) -> str:
        return "files"

    @property
    def default_description(self) -> str:
        return f"Files matching {self.pattern} dropped into {self.landing}"
