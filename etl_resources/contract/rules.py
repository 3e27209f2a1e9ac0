"""Row contracts: normalise and type each declared column, and split a batch into valid rows and rejects.

Everything is a polars expression over the whole batch, so validation costs no per-row Python.
"""

import datetime as dt
import re
from dataclasses import dataclass

import polars as pl

from etl_resources.config.model import ColumnRule, Contract
from etl_resources.contract.timestamps import LAKE_TIMESTAMP, Parsed, parse_date, parse_timestamp
from etl_resources.sources.records import RECORD_COLUMN

ERROR = pl.Struct({"field": pl.String, "reason": pl.String})
PARSE_ERROR = "__parse_error"
REJECT_SCHEMA = pl.Schema(
    {
        "row_index": pl.Int64(),
        "errors": pl.List(ERROR),
        "error_count": pl.UInt32(),
        "record": pl.String(),
        "rejected_at": pl.Datetime("us", "UTC"),
        "partition": pl.String(),
    }
)
TRUE_WORDS = ["true", "t", "yes", "y", "1"]
FALSE_WORDS = ["false", "f", "no", "n", "0"]


@dataclass(frozen=True)
class Split:
    valid: pl.DataFrame
    rejects: pl.DataFrame


def target_dtype(type_name: str) -> pl.DataType:
    if match := re.fullmatch(r"decimal\((\d+),(\d+)\)", type_name):
        return pl.Decimal(int(match[1]), int(match[2]))
    return {
        "string": pl.String(),
        "int": pl.Int64(),
        "float": pl.Float64(),
        "bool": pl.Boolean(),
        "date": pl.Date(),
        "timestamp": LAKE_TIMESTAMP,
    }[type_name]


def _typed(value: pl.Expr, source: pl.DataType, rule: ColumnRule) -> Parsed:
    """The declared type from whatever the source gave; null where the value cannot be read as that type."""
    if rule.type == "timestamp":
        return parse_timestamp(value, source, rule.format, rule.timezone)
    if rule.type == "date":
        return parse_date(value, source, rule.format)
    dtype, reason = target_dtype(rule.type), pl.lit(f"type: not a valid {rule.type}")
    if source == pl.String:
        if rule.type == "bool":
            lowered = value.str.to_lowercase()
            return Parsed(pl.when(lowered.is_in(TRUE_WORDS)).then(True).when(lowered.is_in(FALSE_WORDS)).then(False), reason)
        return Parsed(value.cast(dtype, strict=False), reason)
    if rule.type == "int" and source.is_float():
        # 12.5 is not an int: only whole floats pass.
        return Parsed(pl.when(value == value.floor()).then(value.cast(pl.Int64, strict=False)), reason)
    return Parsed(value.cast(dtype, strict=False), reason)


@dataclass(frozen=True)
class Rule:
    """One way a value can break the contract: the condition that flags it, and the reason a reject records."""

    broken: pl.Expr
    field: str
    reason: str | pl.Expr

    def error(self) -> pl.Expr:
        reason = pl.lit(self.reason) if isinstance(self.reason, str) else self.reason
        return pl.when(self.broken).then(pl.struct(field=pl.lit(self.field), reason=reason))


def _column(frame_schema: pl.Schema, name: str, rule: ColumnRule, slot: str) -> tuple[pl.Expr, list[Rule]]:
    """The normalised, typed value of one column (written to `slot`), and the rules it can break."""
    source = frame_schema[name]
    raw = pl.col(name)
    text = raw if source == pl.String else raw.cast(pl.String) if rule.type == "string" else None
    if text is not None:
        text = text.str.strip_chars() if rule.trim else text
        text = text.str.to_lowercase() if rule.lowercase else text
    # An empty string is a missing value for every type but string, where `not_empty` decides.
    present = raw.is_not_null() if text is None or rule.type == "string" else raw.is_not_null() & (text != "")
    if rule.type == "string":
        parsed = Parsed(text, pl.lit(None, pl.String))
    else:
        parsed = _typed(text if text is not None else raw, pl.String if text is not None else source, rule)
    value = pl.col(slot)
    rules = []
    if rule.required:
        rules.append(Rule(~present, name, "required: the value is missing"))
    if rule.type != "string":  # any present value reads as a string
        rules.append(Rule(present & value.is_null(), name, parsed.reason))
    if rule.not_empty:
        rules.append(Rule(present & ~value.cast(pl.String).str.contains(r"\S"), name, "not_empty: the value is empty"))
    if rule.min is not None:
        rules.append(Rule(value < rule.min, name, f"min: below {rule.min:g}"))
    if rule.max is not None:
        rules.append(Rule(value > rule.max, name, f"max: above {rule.max:g}"))
    if rule.allowed is not None:
        rules.append(Rule(value.is_not_null() & ~value.is_in(rule.allowed), name, f"allowed: not one of {', '.join(map(str, rule.allowed))}"))
    if rule.pattern is not None:
        rules.append(Rule(value.is_not_null() & ~value.cast(pl.String).str.contains(rule.pattern), name, f"pattern: does not match {rule.pattern}"))
    return parsed.value.alias(slot), rules


def apply_contract(contract: Contract | None, frame: pl.DataFrame, row_offset: int, partition_key: str) -> Split:
    """Valid rows with the declared columns typed (extra columns kept or dropped), and rejects with their reasons."""
    if contract is None:
        if PARSE_ERROR not in frame.columns:
            return Split(valid=frame.drop(RECORD_COLUMN, strict=False), rejects=pl.DataFrame(schema=REJECT_SCHEMA))
        # A reader's parse errors are rejects with or without a contract; the other columns pass as they are.
        contract = Contract(columns={}, extra_columns="keep")
    missing = [pl.lit(None, pl.String).alias(name) for name in contract.columns if name not in frame.columns]
    frame = frame.with_columns(missing).with_row_index("__row", offset=row_offset)
    values, typed, rules = [], [], []
    if PARSE_ERROR in frame.columns:
        # A row its file reader could not parse (see file_extract): only its original text is left.
        parse_error = pl.col(PARSE_ERROR)
        rules.append(Rule(parse_error.is_not_null(), "(record)", parse_error))
    for index, (name, rule) in enumerate(contract.columns.items()):
        value, column_rules = _column(frame.schema, name, rule, f"__value{index}")
        values.append(value)
        typed.append(pl.col(f"__value{index}").alias(name))
        rules.extend(column_rules)
    extra = [c for c in frame.columns if c not in contract.columns and not c.startswith("__") and c != RECORD_COLUMN]
    columns = [*typed, *(extra if contract.extra_columns == "keep" else [])]
    # Each value is typed once, into its slot; one boolean pass over the slots decides validity; reasons are
    # worked out only for the rows that failed, and a batch with none skips the filtering copies.
    frame = frame.with_columns(values)
    if not rules:  # e.g. only plain string columns: nothing can fail
        return Split(valid=frame.select(columns), rejects=pl.DataFrame(schema=REJECT_SCHEMA))
    broken = frame.select(pl.any_horizontal(r.broken for r in rules).fill_null(False)).to_series()
    if not broken.any():
        return Split(valid=frame.select(columns), rejects=pl.DataFrame(schema=REJECT_SCHEMA))
    frame = frame.with_columns(broken.alias("__broken"))
    valid = frame.filter(~pl.col("__broken")).select(columns)
    record = pl.col(RECORD_COLUMN) if RECORD_COLUMN in frame.columns else pl.struct(c for c in frame.columns if not c.startswith("__")).struct.json_encode()
    errors = pl.concat_list(r.error() for r in rules).list.drop_nulls()
    rejects = (
        frame.filter(pl.col("__broken"))
        .with_columns(errors.alias("__errors"))
        .select(
            pl.col("__row").cast(pl.Int64).alias("row_index"),
            pl.col("__errors").cast(pl.List(ERROR)).alias("errors"),
            pl.col("__errors").list.len().alias("error_count"),
            record.alias("record"),
            pl.lit(dt.datetime.now(dt.UTC)).cast(pl.Datetime("us", "UTC")).alias("rejected_at"),
            pl.lit(partition_key).alias("partition"),
        )
    )
    return Split(valid=valid, rejects=rejects)
