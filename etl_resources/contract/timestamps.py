"""Time values in contracts: the spellings a `timestamp` or `date` column reads, and why a value was refused.

A timestamp becomes `Datetime("us", "UTC")`: a value with an offset is moved to UTC exactly, one without is
read in the column's `timezone`. Every parse is a polars expression over the whole column; the ISO path
takes the text apart at fixed positions (one regex checks the shape first), because polars' own parser is
fast only for fixed formats and, for lenient ones, drops nanoseconds and `%Z` offsets without a word.
"""

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from functools import cache

import polars as pl

LAKE_TIMESTAMP = pl.Datetime("us", "UTC")
EPOCH_UNITS = {"epoch_s": ("seconds", 1_000_000), "epoch_ms": ("milliseconds", 1_000), "epoch_us": ("microseconds", 1)}
MIN_US = int((dt.datetime(1, 1, 1, tzinfo=dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1))
MAX_US = int((dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1))
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?: ?(?:[Zz]|[Uu][Tt][Cc]|[+-]\d{2}(?::?\d{2})?))?)?$"
ISO_DATE = r"^\d{4}-\d{2}-\d{2}(?:[Tt ]00:00(?::00(?:\.0{1,9})?)?)?$"
# `.123456789` read into microseconds would lose `789`: a fraction with non-zero digits past the sixth.
FINER_THAN_US = r"\.\d{6}0*[1-9]"
SAMPLE = dt.datetime(2026, 11, 10, 4, 24, 31, 123456, tzinfo=dt.UTC)

TIMESTAMP_EXAMPLES = "2026-11-10T04:24:31Z, 2026-11-10 04:24:31.5+01:00 or 2026-11-10 04:24:31 UTC"
FINER_REASON = "type: finer than microseconds, which is what the lake keeps (fix: type: string keeps the text)"
NUMBER_REASON = "type: a number is not a timestamp (fix: declare format: epoch_s, epoch_ms or epoch_us)"

# Directives polars (chrono) accepts but reads wrongly for what people mean by them, each with its fix.
MISREAD_DIRECTIVES = {
    "%Z": "a zone name is not read, an offset after it would be ignored; write the "
    "name as literal text (e.g. ' UTC') and set `timezone`, or read offsets with %z",
    "%f": "chrono reads %f as nanoseconds, so .123456 would become 123 µs; use %.f (the dot and any digits) or %6f",
    "%9f": "nine digits without their dot cannot be checked for a loss below microseconds; use %.9f",
    "%s": "for seconds since 1970 use format: epoch_s",
}
TIME_DIRECTIVES = re.compile(r"%[-_0^#]*(?:[HIklMSpPzTRXrc+s]|:+z|\.?\d?f)")


@dataclass(frozen=True)
class Parsed:
    """A typed value (null where the input cannot be read) and, for those, why: the reject's reason."""

    value: pl.Expr
    reason: pl.Expr


def check_format(type_name: str, fmt: str) -> None:
    """Refuse a `format:` polars would misread or cannot parse back, with the fix; raise ValueError."""
    if type_name not in ("timestamp", "date"):
        raise ValueError(f"`format` applies to type timestamp or date, not {type_name} (fix: remove format, or set the type)")
    if fmt in EPOCH_UNITS:
        if type_name == "date":
            raise ValueError(f"format {fmt} is for type timestamp (fix: type: timestamp)")
        return
    directives = re.findall(r"%[-_0^#]*(?::+z|\.?\d?[a-zA-Z+%])", fmt)
    for directive in directives:
        if directive in MISREAD_DIRECTIVES:
            raise ValueError(f"format {fmt!r}: {directive}: {MISREAD_DIRECTIVES[directive]}")
    if ".%f" in fmt:
        raise ValueError(f"format {fmt!r}: .%f: {MISREAD_DIRECTIVES['%f']}")
    if type_name == "date" and TIME_DIRECTIVES.search(fmt.replace("%%", "")):
        raise ValueError(f"format {fmt!r} reads a time of day, which a date column would drop (fix: type: timestamp, or remove the time directives)")
    sample = pl.Series([SAMPLE if type_name == "timestamp" else SAMPLE.date()])
    try:
        text = sample.dt.strftime(fmt)
        back = text.str.to_datetime(fmt, time_unit="us", strict=False) if type_name == "timestamp" else text.str.to_date(fmt, strict=False)
    except pl.exceptions.PolarsError as err:
        raise ValueError(
            f"format {fmt!r} is not a strftime format polars reads: {str(err).splitlines()[0]} "
            f"(fix: see the directives at https://docs.rs/chrono/latest/chrono/format/strftime)"
        ) from None
    if back.is_null().any() or (back.dt.date() != SAMPLE.date()).any():
        raise ValueError(
            f"format {fmt!r} cannot read back its own output {text[0]!r} (fix: a strftime format with the year, month and "
            f"day, e.g. '%d/%m/%Y %H:%M'; %I needs %p)"
        )


def check_timezone(name: str) -> str:
    """An IANA zone name both Python and polars know; raise ValueError with the fix.

    polars alone also takes `utc` and `+02:00`; Python's list (the tzdata package, a Dagster dependency, where
    the system has none) holds the names only."""
    try:
        zoneinfo.ZoneInfo(name)
        pl.Series([dt.datetime(2000, 1, 1)]).dt.replace_time_zone(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError, pl.exceptions.PolarsError):
        ok = False
    else:
        ok = name in _zone_names()
    if not ok:
        raise ValueError(f"unknown time zone {name!r} (fix: an IANA name such as UTC, Europe/Berlin or America/New_York)")
    return name


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _in_zone(local: pl.Expr, zone: str) -> pl.Expr:
    """A naive datetime read as wall-clock time in `zone`, in UTC; null where DST skips or repeats it."""
    if zone == "UTC":
        return local.dt.replace_time_zone("UTC")
    return local.dt.replace_time_zone(zone, ambiguous="null", non_existent="null").dt.convert_time_zone("UTC")


def _zone_reason(local: pl.Expr, zone: str, otherwise: str) -> pl.Expr:
    if zone == "UTC":
        return pl.lit(otherwise)
    fix = "(fix: send the value with its UTC offset)"
    skipped = local.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null").is_null()
    repeated = local.dt.replace_time_zone(zone, ambiguous="null", non_existent="null").is_null()
    return (
        pl.when(local.is_not_null() & skipped)
        .then(pl.lit(f"type: a local time that does not exist in {zone}: the clocks skip it at a DST change {fix}"))
        .when(local.is_not_null() & repeated)
        .then(pl.lit(f"type: a local time that is ambiguous in {zone}: the clocks pass it twice at a DST change {fix}"))
        .otherwise(pl.lit(otherwise))
    )


def _digits(text: pl.Expr, start: int, length: int) -> pl.Expr:
    return text.str.slice(start, length).cast(pl.Int64, strict=False)


def _iso_parts(text: pl.Series) -> pl.DataFrame:
    """The text taken apart in stages, each part computed once: `local` (naive, null unless the shape and the
    field ranges are right), `offset` in minutes (null: none written) and `exact` (no digits past microseconds)."""
    value = pl.col("text")
    tail = value.str.slice(16)  # past HH:MM, so a date's own `-` never reads as an offset
    parts = pl.DataFrame({"text": text}).select(
        shaped=value.str.contains(ISO_TIMESTAMP),
        date=value.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False),
        hour=_digits(value, 11, 2).fill_null(0),
        minute=_digits(value, 14, 2).fill_null(0),
        second=pl.when(value.str.slice(16, 1) == ":").then(_digits(value, 17, 2)).otherwise(0),
        nanos=value.str.slice(19).str.extract(r"^\.(\d{1,9})").str.pad_end(9, "0").cast(pl.Int64).fill_null(0),
        offset=tail.str.extract(r"([+-]\d{2}:?\d{0,2})$").str.replace(":", "", literal=True),
        zulu=tail.str.contains(r"(?:[Zz]|[Uu][Tt][Cc])$"),
    )
    offset = pl.col("offset")
    offset_hours = _digits(offset, 1, 2)
    offset_minutes = pl.when(offset.str.len_bytes() == 3).then(0).otherwise(_digits(offset, 3, 2))
    sign = pl.when(offset.str.starts_with("-")).then(-1).otherwise(1)
    in_range = (pl.col("hour") < 24) & (pl.col("minute") < 60) & (pl.col("second") < 60) & (offset_hours.fill_null(0) < 24) & (offset_minutes.fill_null(0) < 60)
    local = pl.col("date").cast(pl.Datetime("us")) + pl.duration(
        hours=pl.col("hour"), minutes=pl.col("minute"), seconds=pl.col("second"), microseconds=pl.col("nanos") // 1000
    )
    return parts.select(
        local=pl.when(pl.col("shaped") & in_range).then(local),
        offset=pl.when(pl.col("zulu")).then(0).otherwise(sign * (offset_hours * 60 + offset_minutes)),
        exact=pl.col("nanos") % 1000 == 0,
    )


def _iso_value(text: pl.Series, zone: str) -> pl.Series:
    parts = _iso_parts(text)
    local, offset = pl.col("local"), pl.col("offset")
    if zone == "UTC":
        utc = (local - pl.duration(minutes=offset.fill_null(0))).dt.replace_time_zone("UTC")
    else:
        from_offset = (local - pl.duration(minutes=offset)).dt.replace_time_zone("UTC")
        utc = pl.when(offset.is_not_null()).then(from_offset).otherwise(_in_zone(local, zone))
    return parts.select(pl.when(pl.col("exact")).then(utc).cast(LAKE_TIMESTAMP)).to_series()


def _iso_reason(text: pl.Series, zone: str) -> pl.Series:
    parts = _iso_parts(text)
    expected = f"type: not a timestamp; expected ISO 8601 such as {TIMESTAMP_EXAMPLES} (fix: declare `format:` for other spellings)"
    local = pl.col("local")
    reason = pl.when(local.is_not_null() & ~pl.col("exact")).then(pl.lit(FINER_REASON))
    reason = reason.otherwise(_zone_reason(pl.when(pl.col("offset").is_null()).then(local), zone, expected))
    return parts.select(reason).to_series()


def _iso_timestamp(text: pl.Expr, zone: str) -> Parsed:
    """ISO 8601 with `T` or a space, optional seconds and up to nine fraction digits, and `Z`, ` UTC`, ±HH,
    ±HHMM or ±HH:MM (a space before it allowed); a bare date is midnight. No offset: wall-clock time in `zone`."""
    value = text.map_batches(lambda batch: _iso_value(batch, zone), return_dtype=LAKE_TIMESTAMP, is_elementwise=True)
    reason = text.map_batches(lambda batch: _iso_reason(batch, zone), return_dtype=pl.String, is_elementwise=True)
    return Parsed(value, reason)


def _formatted_timestamp(text: pl.Expr, fmt: str, zone: str) -> Parsed:
    expected = f"type: does not match format {fmt!r}"
    if re.search(r"%[:#]*z", fmt.replace("%%", "")):
        value = text.str.to_datetime(fmt, time_unit="us", time_zone="UTC", strict=False)
        reason = pl.lit(expected)
    else:
        local = text.str.to_datetime(fmt, time_unit="us", strict=False)
        value, reason = _in_zone(local, zone), _zone_reason(local, zone, expected)
    if re.search(r"%\.9?f", fmt):
        finer = text.str.contains(FINER_THAN_US)
        value, reason = pl.when(~finer).then(value), pl.when(finer).then(pl.lit(FINER_REASON)).otherwise(reason)
    return Parsed(value.cast(LAKE_TIMESTAMP), reason)


def _epoch(value: pl.Expr, source: pl.DataType, fmt: str) -> Parsed:
    """Seconds, milliseconds or microseconds since 1970-01-01 UTC, from an integer or its text (a decimal
    fraction allowed down to the microsecond); a float is read through its shortest text, as JSON wrote it."""
    unit, per_unit = EPOCH_UNITS[fmt]
    reason = pl.lit(f"type: not a number of {unit} since 1970-01-01 UTC within years 1-9999 (format {fmt})")
    if source.is_integer():
        whole = value.cast(pl.Int64, strict=False)
        micros = pl.when(whole.is_between(MIN_US // per_unit, MAX_US // per_unit)).then(whole * per_unit)
        return Parsed(micros.cast(LAKE_TIMESTAMP), reason)
    text = value.cast(pl.String, strict=False)
    digits = len(str(per_unit)) - 1
    shaped = text.str.contains(r"^-?\d{1,18}(?:\.\d+)?$")
    whole = text.str.extract(r"^-?(\d+)").cast(pl.Int64, strict=False)
    whole = pl.when(whole <= MAX_US // per_unit + 1).then(whole)  # so that `whole * per_unit` cannot overflow
    fraction = text.str.extract(r"\.(\d+)$").fill_null("")
    exact = fraction.str.slice(digits).str.contains(r"^0*$")
    part = fraction.str.slice(0, digits).str.pad_end(digits, "0").cast(pl.Int64, strict=False).fill_null(0) if digits else pl.lit(0)
    micros = whole * per_unit + part
    micros = pl.when(text.str.starts_with("-")).then(-micros).otherwise(micros)
    valid = shaped & exact & micros.is_between(MIN_US, MAX_US)
    reason = pl.when(shaped & ~exact).then(pl.lit(FINER_REASON)).otherwise(reason)
    return Parsed(pl.when(valid).then(micros).cast(LAKE_TIMESTAMP), reason)


def parse_timestamp(value: pl.Expr, source: pl.DataType, fmt: str | None, zone: str) -> Parsed:
    """A timestamp column's value in UTC from what the source gave: text, a datetime, a date or an epoch number."""
    if fmt in EPOCH_UNITS and (source == pl.String or source.is_numeric()):
        return _epoch(value, source, fmt)
    if source == pl.String:
        return _formatted_timestamp(value, fmt, zone) if fmt else _iso_timestamp(value, zone)
    if isinstance(source, pl.Datetime):
        exact = pl.lit(True) if source.time_unit != "ns" else value.dt.nanosecond() % 1000 == 0
        if source.time_zone:
            utc, reason = value.dt.convert_time_zone("UTC"), pl.lit(FINER_REASON)
        else:
            utc, reason = _in_zone(value, zone), _zone_reason(value, zone, FINER_REASON)
        return Parsed(pl.when(exact).then(utc).cast(LAKE_TIMESTAMP), reason)
    if source == pl.Date:
        local = value.cast(pl.Datetime("us"))
        return Parsed(_in_zone(local, zone).cast(LAKE_TIMESTAMP), _zone_reason(local, zone, "type: not a valid timestamp"))
    reason = NUMBER_REASON if source.is_numeric() else f"type: a {source} value is not a timestamp"
    return Parsed(pl.lit(None, LAKE_TIMESTAMP), pl.lit(reason))


def parse_date(value: pl.Expr, source: pl.DataType, fmt: str | None) -> Parsed:
    """A date column's value: ISO `YYYY-MM-DD` (midnight with a time of 00:00 too), `format:`, or a source
    date or datetime at midnight (in UTC for one with a zone); a time of day other than midnight is refused."""
    if source == pl.String:
        if fmt:
            return Parsed(value.str.to_date(fmt, strict=False), pl.lit(f"type: does not match format {fmt!r}"))
        parsed = pl.when(value.str.contains(ISO_DATE)).then(value.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
        return Parsed(
            parsed,
            pl.lit(
                "type: not a date; expected YYYY-MM-DD such as 2026-11-10 (fix: declare `format:` for other spellings; a time of day needs type: timestamp)"
            ),
        )
    if source == pl.Date:
        return Parsed(value, pl.lit("type: not a valid date"))
    if isinstance(source, pl.Datetime):
        naive = value.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if source.time_zone else value
        midnight = naive == naive.dt.truncate("1d")
        return Parsed(pl.when(midnight).then(naive.dt.date()), pl.lit("type: has a time of day, which a date column would drop (fix: type: timestamp)"))
    reason = (
        "type: a number is not a date (fix: send YYYY-MM-DD text, or declare type: int)" if source.is_numeric() else f"type: a {source} value is not a date"
    )
    return Parsed(pl.lit(None, pl.Date), pl.lit(reason))
