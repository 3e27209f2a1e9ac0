"""The sources file: a YAML list of sources validated with pydantic, with errors that name file, source and field."""

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import sqlalchemy as sa
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, model_validator

from etl_resources import warehouse_names
from etl_resources.contract_time import EPOCH_UNITS, check_format, check_timezone
from etl_resources.secrets import SECRET_REF, SecretStore, secret_names

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER)]
SourceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
QualifiedTable = Annotated[str, StringConstraints(pattern=r"^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$")]



def _cron(value: str) -> str:
    from dagster._utils.schedules import is_valid_cron_string

    if not is_valid_cron_string(value):
        raise ValueError(f"{value!r} is not a cron expression (fix: five fields, minute hour day month weekday, e.g. '15 0 * * *')")
    return value


Cron = Annotated[str, AfterValidator(_cron)]
# Dagster's owner format: a team or an email address.
Owner = Annotated[str, StringConstraints(pattern=r"^(team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")]
DEFAULT_SCHEDULE = "15 0 * * *"
# Dagster's rule for tag values, checked here so a bad one is reported with its source and field.
TagValue = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{0,63}$")]

HINTS = {
    "missing": "add the field",
    "extra_forbidden": "remove it or fix its spelling",
    "date_from_datetime_parsing": "write the date as YYYY-MM-DD, e.g. 2026-11-01",
    "date_parsing": "write the date as YYYY-MM-DD, e.g. 2026-11-01",
    "date_type": "write the date as YYYY-MM-DD, e.g. 2026-11-01",
    "string_pattern_mismatch": "use letters, digits and underscores only, starting with a letter or underscore",
}
OWNER_HINT = "write team:<name> or an email address"


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    table: Identifier
    schema_: Identifier | None = Field(default=None, alias="schema")
    # replace_partition: the table holds exactly each loaded day's rows; merge: rows upserted on `keys`;
    # append: rows added, never removed (re-loading a day adds its rows again).
    write_mode: Literal["replace_partition", "merge", "append"] = "replace_partition"
    keys: list[Identifier] = []

    @model_validator(mode="after")
    def _keys_for_merge(self) -> "Target":
        if self.write_mode == "merge" and not self.keys:
            raise ValueError("write_mode merge needs `keys`, the columns that identify a row (fix: e.g. keys: [order_id])")
        if self.write_mode != "merge" and self.keys:
            raise ValueError(f"`keys` only apply to write_mode merge, not {self.write_mode} (fix: remove keys or set write_mode: merge)")
        return self

    @property
    def qualified(self) -> str:
        return f"{self.schema_}.{self.table}" if self.schema_ else self.table


COLUMN_TYPE = r"^(string|int|float|bool|date|timestamp|decimal\(\d{1,2},\d{1,2}\))$"


def _format_for_type(fmt: str, info: ValidationInfo) -> str:
    if "type" in info.data:  # else the type itself is wrong, and reported
        check_format(info.data["type"], fmt)
    return fmt


def _zone_for_type(zone: str, info: ValidationInfo) -> str:
    if info.data.get("type", "timestamp") != "timestamp":
        raise ValueError(f"`timezone` applies to type timestamp, not {info.data['type']} (fix: remove timezone, or set type: timestamp)")
    if info.data.get("format") in EPOCH_UNITS:
        raise ValueError(f"`timezone` does not apply to format {info.data['format']}: epoch numbers count from 1970-01-01 UTC (fix: remove timezone)")
    return check_timezone(zone)


class ColumnRule(BaseModel):
    """What a valid value of one column is, and how it is normalised first."""

    model_config = ConfigDict(extra="forbid")

    type: Annotated[str, StringConstraints(pattern=COLUMN_TYPE)] = "string"
    required: bool = False
    min: float | None = None
    max: float | None = None
    allowed: list[str | int | float | bool] | None = None
    pattern: str | None = None
    not_empty: bool = False
    trim: bool = True
    lowercase: bool = False
    # timestamp or date text that is not ISO 8601: a strftime format, or epoch_s / epoch_ms / epoch_us.
    format: Annotated[str, AfterValidator(_format_for_type)] | None = None
    # The IANA zone of timestamp values written without an offset; values with one are converted exactly.
    timezone: Annotated[str, AfterValidator(_zone_for_type)] = "UTC"

    @model_validator(mode="after")
    def _pattern_compiles(self) -> "ColumnRule":
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as err:
                raise ValueError(f"`pattern` is not a regular expression: {err}") from None
        return self


class Contract(BaseModel):
    """The row contract: declared columns with types and rules; rows that break it go to the rejects."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, ColumnRule]
    keys: list[str] = []
    extra_columns: Literal["keep", "drop"] = "drop"

    @model_validator(mode="after")
    def _keys_declared(self) -> "Contract":
        unknown = [key for key in self.keys if key not in self.columns]
        if unknown:
            raise ValueError(
                f"`keys` {unknown} are not declared in `columns`, and the keys check reads the contract's columns "
                f"(fix: declare each, e.g. {unknown[0]}: {{type: string, required: true}})"
            )
        return self


class Checks(BaseModel):
    """The asset checks generated for a source."""

    model_config = ConfigDict(extra="forbid")

    reject_rate_max: float = Field(default=0.05, ge=0, le=1)
    min_rows: int = Field(default=1, ge=0)
    min_rows_severity: Literal["warn", "error"] = "error"
    schema_change: bool = True


class Freshness(BaseModel):
    """How late the newest day may arrive: by `deadline` (cron, UTC) the day before must be materialized."""

    model_config = ConfigDict(extra="forbid")

    deadline: Cron = "0 6 * * *"
    severity: Literal["warn", "error"] = "warn"


class StepRetries(BaseModel):
    """How often Dagster re-runs a failed extract (a dropped connection, a restarting server), and how long it waits."""

    model_config = ConfigDict(extra="forbid")

    max_retries: int = Field(default=2, ge=0, le=10)
    delay_seconds: float = Field(default=10.0, ge=0)
    backoff: Literal["exponential", "linear"] = "exponential"


class BaseSource(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: SourceName
    description: str | None = None
    start_date: dt.date
    target: Target
    enabled: bool = True
    batch_size: int = Field(default=50_000, ge=1, le=10_000_000)
    group: Identifier | None = None
    owners: list[Owner] = []
    tags: dict[Identifier, TagValue] = {}
    # When the day that just closed (UTC) is extracted and loaded; null for no schedule.
    schedule: Cron | None = DEFAULT_SCHEDULE
    # A backfill runs as one run; with this, as runs of at most this many days each.
    backfill_days_per_run: int | None = Field(default=None, ge=1)
    freshness: Freshness | None = Freshness()
    contract: Contract | None = None
    checks: Checks = Checks()
    step_retries: StepRetries = StepRetries()

    @property
    def one_line_description(self) -> str:
        """The first line of `description`, or a sentence about where the rows come from."""
        if self.description:
            return self.description.strip().splitlines()[0]
        return f"{self.default_description}, one Parquet partition a day."


class SqlSource(BaseSource):
    """A table or query in any database SQLAlchemy can reach."""

    kind: Literal["sql"]
    connection: str
    table: QualifiedTable | None = None
    query: str | None = None
    mode: Literal["snapshot", "incremental"] = "snapshot"
    watermark_column: str | None = None

    @model_validator(mode="after")
    def _table_or_query(self) -> "SqlSource":
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table` or `query`")
        if self.mode == "incremental" and not self.watermark_column:
            raise ValueError("mode `incremental` needs `watermark_column`: the column whose value places a row in a day")
        if SECRET_REF.fullmatch(self.connection.strip()):
            return self
        try:
            sa.make_url(self.connection)
        except sa.exc.ArgumentError as err:
            raise ValueError(f"`connection` is not a SQLAlchemy URL ({err}); e.g. postgresql+psycopg://user:${{PG_PASSWORD}}@host/db") from None
        return self

    @property
    def protocol(self) -> str:
        """The dialect, e.g. postgresql; `sql` when the whole URL is one secret and so unknown until run time."""
        if SECRET_REF.fullmatch(self.connection.strip()):
            return "sql"
        return sa.make_url(self.connection).get_backend_name()

    @property
    def default_description(self) -> str:
        return f"{self.mode.capitalize()} extract of {self.table or 'a query'} from {self.protocol}"


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


class FileSource(BaseSource):
    """Files dropped into a landing folder or ADLS container (CSV, JSON lines, Parquet); each file belongs to
    the day its name says, through `date_pattern`, and a day's partition holds every file of that day."""

    kind: Literal["files"]
    landing: str
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
        return self

    @property
    def protocol(self) -> str:
        return "files"

    @property
    def default_description(self) -> str:
        return f"Files matching {self.pattern} dropped into {self.landing}"


Source = Annotated[SqlSource | RestSource | FileSource, Field(discriminator="kind")]
AnySource = SqlSource | RestSource | FileSource


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


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[Source]
    exports: list[SalesforceExport] = []

    @model_validator(mode="after")
    def _exports_read_sources(self) -> "SourcesFile":
        names = {source.name for source in self.sources}
        for export in self.exports:
            unknown = [name for name in export.reads if name not in names]
            if unknown:
                raise ValueError(f"export '{export.name}' reads {unknown}, which are not sources in this file (fix: name sources from `sources:`)")
        return self

    @property
    def enabled(self) -> list[AnySource]:
        return [source for source in self.sources if source.enabled]


DISCRIMINATOR_TAGS = {"sql", "rest", "files", "api_key", "bearer", "basic", "oauth2_client_credentials"}


class _StringDatesLoader(yaml.SafeLoader):
    """YAML without implicit timestamps, so a bad date reaches pydantic and gets a proper message."""


_StringDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class SourcesConfigError(ValueError):
    """Every problem of a sources file at once, each naming the file, the source and the field."""


_DATE = pydantic.TypeAdapter(dt.date)


def _source_label(raw: Any, index: int) -> str:
    name = raw[index].get("name") if isinstance(raw, list) and index < len(raw) and isinstance(raw[index], dict) else None
    return f"source '{name}' (sources[{index}])" if name else f"sources[{index}]"


Problem = tuple[tuple[str | int, ...], str]


def _field(parts: tuple[str | int, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts).lstrip(".")


def _describe(error: dict[str, Any], raw_sources: Any) -> Problem:
    loc = [part for part in error["loc"] if part not in DISCRIMINATOR_TAGS]
    path = tuple(loc)
    where = "the file"
    field = ".".join(str(p) for p in loc)
    if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
        where = _source_label(raw_sources, loc[1])
        field = ".".join(str(p) for p in loc[2:]) or "(the source itself)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "union_tag_invalid":
        tag = error["ctx"]["discriminator"].strip("'")
        field = f"{field}.{tag}".lstrip(".") if len(loc) > 2 else tag
        path = (*path, tag)
        message = f"unknown {tag} {error['ctx']['tag']!r}; supported: {error['ctx']['expected_tags']}"
    hint = HINTS.get(error["type"])
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    if error["type"] == "string_pattern_mismatch":
        message = f"{error['input']!r} is not a safe name"
        if loc[-1] == "type" and "columns" in loc:
            message, hint = f"unknown type {error['input']!r}", "use string, int, float, bool, date, timestamp or decimal(p,s)"
        elif loc[-1] == "name" and len(loc) == 3:
            hint = "use lower-case letters, digits and underscores, starting with a letter"
        elif "owners" in loc:
            message, hint = f"{error['input']!r} is not an owner", OWNER_HINT
        elif "tags" in loc:
            message, hint = f"{error['input']!r} is not a tag value", "use up to 63 letters, digits, '-', '_' or '.'"
    return path, f"{where}, field '{field}': {message}" + (f" (fix: {hint})" if hint else "")


def _entries(raw_sources: Any) -> list[tuple[int, dict]]:
    return [(i, s) for i, s in enumerate(raw_sources) if isinstance(s, dict)] if isinstance(raw_sources, list) else []


def _duplicate_problems(raw_sources: Any) -> list[Problem]:
    problems = []
    names: dict[Any, int] = {}
    for index, entry in _entries(raw_sources):
        name = entry.get("name")
        if name is not None and name in names:
            label = _source_label(raw_sources, index)
            problems.append((("sources", index, "name"), f"{label}, field 'name': duplicate of sources[{names[name]}] (fix: give every source its own name)"))
        names.setdefault(name, index)
    return problems


def _target_name_problems(raw_sources: Any, warehouse_url: str | None, secrets: SecretStore | None) -> list[Problem]:
    """Targets that are one table on the warehouse, or another target's generated name, or too long there.
    Targets whose names are not safe are left to the model's own message."""
    dialects, known = warehouse_names.warehouse_dialects(warehouse_url, secrets.lookup if secrets else None)
    targets = []
    for index, entry in _entries(raw_sources):
        target = entry.get("target")
        if isinstance(target, dict) and all(re.fullmatch(IDENTIFIER, str(name)) for name in (target.get("table"), target.get("schema") or "_")):
            mode = str(target.get("write_mode") or "replace_partition")
            label = _source_label(raw_sources, index)
            targets.append(warehouse_names.TargetName(index, label, entry.get("name"), target.get("schema"), target["table"], mode))
    return [(("sources", index, "target"), message) for index, message in warehouse_names.target_problems(dialects, known, targets)]


def _strings(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Every string in a raw source entry with its field path, for finding secret references."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [pair for key, item in value.items() if key != "description" for pair in _strings(item, (*path, str(key)))]
    if isinstance(value, list):
        return [pair for i, item in enumerate(value) for pair in _strings(item, (*path, i))]
    return []


def _secret_problems(raw: Any, secrets: SecretStore) -> list[Problem]:
    """Every `${NAME}` of the enabled sources and of the exports that cannot be found, where it is written."""
    problems = []
    for section, label in (("sources", "source"), ("exports", "export")):
        entries = raw.get(section) if isinstance(raw, dict) else None
        for index, entry in _entries(entries):
            if entry.get("enabled", True) is False:
                continue
            name_part = f"{label} '{entry['name']}' ({section}[{index}])" if entry.get("name") else f"{section}[{index}]"
            for parts, text in _strings(entry):
                where = f"{name_part}, field '{_field(parts)}'"
                for name in secret_names(text):
                    try:
                        found = secrets.lookup(name) is not None
                    except KeyError as err:
                        problems.append(((section, index, *parts), f"{where}: {err}"))
                        continue
                    if not found:
                        problems.append(((section, index, *parts), f"{where}: {secrets.missing_message(name)}"))
    return problems


def load_sources(path: Path, secrets: SecretStore | None, warehouse_url: str | None = None) -> SourcesFile:
    """Parse and validate a sources file; raise one SourcesConfigError listing every problem.

    With `secrets` None the file's `${NAME}` references are not looked up (checking a file away from its secrets).
    Target names are checked against the warehouse at `warehouse_url`; against every supported one without it."""
    _check_is_file(path)
    raw, problems, locate = _workbook(path) if path.suffix.lower() == ".xlsx" else _yaml(path)
    raw_sources = raw.get("sources")
    if "sources" in raw and raw_sources in (None, []):
        raise SourcesConfigError(f"no sources configured in {path.resolve()}: `sources:` lists none (fix: add one, as in the README's section 'Sources file')")
    try:
        sources = SourcesFile.model_validate(raw)
    except pydantic.ValidationError as err:
        problems += [_describe(e, raw_sources) for e in err.errors()]
    problems += _duplicate_problems(raw_sources) + _future_start_problems(raw) + _target_name_problems(raw_sources, warehouse_url, secrets)
    problems += _secret_problems(raw, secrets) if secrets else []
    if problems:
        raise SourcesConfigError(_report(path, locate, problems))
    if not sources.enabled:
        raise SourcesConfigError(
            f"no enabled source in {path.resolve()}: all {len(sources.sources)} have `enabled: false`, so nothing would be built "
            "(fix: set `enabled: true` on the sources to run)"
        )
    return sources


def _check_is_file(path: Path) -> None:
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix.lower() in {".yaml", ".yml", ".xlsx"})
        example = path / (inside[0] if inside else "sources.yaml")
        raise SourcesConfigError(f"sources file {path.resolve()} is a directory (fix: give the file's path, e.g. {example.resolve()})")
    if not path.is_file():
        raise SourcesConfigError(f"sources file {path.resolve()} does not exist (fix: point ETL_SOURCES_FILE at a sources YAML or workbook)")


def _future_start_problems(raw: dict) -> list[Problem]:
    """A start_date after today (UTC) of an enabled source or an export: its partitions would not exist yet,
    so nothing could run or be backfilled, and Dagster would not say why."""
    today = dt.datetime.now(dt.UTC).date()
    problems = []
    for section, label in (("sources", "source"), ("exports", "export")):
        for index, entry in _entries(raw.get(section)):
            try:
                start = _DATE.validate_python(entry.get("start_date"))
            except pydantic.ValidationError:
                continue  # reported by the model
            if entry.get("enabled", True) is False or start <= today:
                continue
            name_part = f"{label} '{entry['name']}' ({section}[{index}])" if entry.get("name") else f"{section}[{index}]"
            problems.append((
                (section, index, "start_date"),
                f"{name_part}, field 'start_date': {start} is in the future (today, UTC, is {today}), so it has no day to load yet "
                f"(fix: set start_date to {today} or earlier{'' if section == 'exports' else ', or enabled: false until then'})",
            ))
    return problems


def _text(path: Path) -> str:
    """The file as text: UTF-8 (a byte-order mark allowed), or UTF-16 with its byte-order mark, as YAML allows."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SourcesConfigError(f"sources file {path.resolve()} cannot be read: {err.strerror} (fix: check the file's permissions)") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"PK\x03\x04"):
        raise SourcesConfigError(f"sources file {path.resolve()} is a zip archive, such as an Excel workbook, not YAML text (fix: a workbook needs the extension .xlsx)")
    if b"\x00" in data:
        raise SourcesConfigError(f"sources file {path.resolve()} is a binary file, not YAML text (fix: point ETL_SOURCES_FILE at the sources YAML; save text as UTF-8)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SourcesConfigError(
            f"sources file {path.resolve()} is not UTF-8 text: byte 0x{data[err.start]:02x} at line {line}, column {column} "
            f"(fix: save it as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix})"
        ) from None


def _yaml(path: Path) -> tuple[dict, list[Problem], Callable[[tuple], str]]:
    text = _text(path)
    try:
        raw = yaml.load(text, Loader=_StringDatesLoader)
    except yaml.YAMLError as err:
        raise SourcesConfigError(f"sources file {path.resolve()} is not valid YAML: {err}") from None
    if raw is None:
        raise SourcesConfigError(f"sources file {path.resolve()} is empty (fix: start it with `sources:` and a source, as in the README's section 'Sources file')")
    if not isinstance(raw, dict):
        what = "a list" if isinstance(raw, list) else f"the single value {str(raw)[:40]!r}"
        fix = "put `sources:` on the first line and indent the list under it" if isinstance(raw, list) else "start it with `sources:` and a source"
        raise SourcesConfigError(f"sources file {path.resolve()} holds {what}, not a mapping with `sources:` (fix: {fix})")
    lines = yaml_lines(text)
    return raw, [], lambda where: f"line {line_of(lines, where)}"


def _workbook(path: Path) -> tuple[dict, list[Problem], Callable[[tuple], str]]:
    from etl_resources import excel_config

    try:
        rows = excel_config.read_rows(path)
    except excel_config.WorkbookError as err:
        raise SourcesConfigError(str(err)) from None
    if not rows:
        raise SourcesConfigError(
            f"no sources configured in {path.resolve()}: sheet '{excel_config.SHEET}' has no rows under its header (fix: add a row per table or API endpoint)"
        )
    problems: list[Problem] = [
        (("sources", index, *excel_config.COLUMN_FIELDS.get(column, ())), f"{message}")
        for index, row in enumerate(rows)
        for column, message in excel_config.row_problems(row)
    ]
    return {"sources": [excel_config.source_of(row) for row in rows]}, problems, excel_config.cell_of


def _report(path: Path, locate: Callable[[tuple], str], problems: list[Problem]) -> str:
    listed, seen = [], set()
    for where, problem in problems:
        location = locate(where)
        # A workbook cell already reported (a value outside its list) is not reported again as the model sees it.
        if path.suffix.lower() == ".xlsx" and location in seen:
            continue
        seen.add(location)
        listed.append(f"  - {location}: {problem}")
    return f"invalid sources file {path.resolve()}:\n" + "\n".join(listed)


def yaml_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """The 1-based line of every key and item in a YAML document, by its path (`("sources", 0, "name")`)."""
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[(*path, key.value)] = key.start_mark.line + 1
                walk(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*path, index)] = item.start_mark.line + 1
                walk(item, (*path, index))

    root = yaml.compose(text, Loader=_StringDatesLoader)
    if root is not None:
        walk(root, ())
    return lines


def line_of(lines: dict[tuple[str | int, ...], int], path: tuple[str | int, ...]) -> int:
    """The line of `path`, or of its nearest ancestor that is in the file (a missing field: its source)."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1
