"""What every source has in common: its target, contract, checks, schedule and retries, and the names they use."""

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, model_validator

from etl_resources.contract.timestamps import EPOCH_UNITS, check_format, check_timezone

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
