"""Asset checks generated per source: reject rate (blocking), row count, keys, schema change.

A check result belongs to a run, not to a day, so in a run over several days each check covers them all:
it fails if any day fails, and its metadata names the days.
"""

import datetime as dt
from dataclasses import dataclass, field

import dagster as dg
import polars as pl

from etl_resources.config import AnySource
from etl_resources.lake import Lake, read_manifest, scan_partition

REJECT_RATE = "reject_rate"
ROW_COUNT = "row_count"
KEYS = "keys_not_null_unique"
SCHEMA = "schema_unchanged"
SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


@dataclass
class Tally:
    """What validation saw of one day: rows read, and the rejected rows."""

    read: int = 0
    rejects: list[pl.DataFrame] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(frame.height for frame in self.rejects)


def check_specs(source: AnySource, asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    checks, contract = source.checks, source.contract
    specs = [dg.AssetCheckSpec(ROW_COUNT, asset=asset_key, description=f"Each day has at least {checks.min_rows} valid row(s).")]
    if contract is not None:
        specs.append(
            dg.AssetCheckSpec(
                REJECT_RATE,
                asset=asset_key,
                blocking=True,
                description=f"At most {checks.reject_rate_max:.1%} of a day's rows break the contract; above that the warehouse load is blocked.",
            )
        )
        if contract.keys:
            specs.append(dg.AssetCheckSpec(KEYS, asset=asset_key, description=f"Key ({', '.join(contract.keys)}) is never null and unique within a day."))
    if checks.schema_change:
        specs.append(dg.AssetCheckSpec(SCHEMA, asset=asset_key, description="Columns and types are the same as the previous day's."))
    return specs


def top_reasons(rejects: list[pl.DataFrame], limit: int = 5) -> dict[str, int]:
    if not rejects:
        return {}
    counts = (
        pl.concat(rejects)
        .select(pl.col("errors").explode().struct.unnest())
        .group_by("field", "reason")
        .len()
        .sort("len", descending=True)
        .head(limit)
    )
    return {f"{row['field']}: {row['reason']}": row["len"] for row in counts.to_dicts()}


def reject_rate_result(source: AnySource, tallies: dict[str, Tally]) -> dg.AssetCheckResult:
    limit = source.checks.reject_rate_max
    rates = {key: (t.rejected / t.read if t.read else 0.0) for key, t in tallies.items()}
    over = sorted(key for key, rate in rates.items() if rate > limit)
    read, rejected = sum(t.read for t in tallies.values()), sum(t.rejected for t in tallies.values())
    reasons = top_reasons([frame for t in tallies.values() for frame in t.rejects])
    return dg.AssetCheckResult(
        check_name=REJECT_RATE,
        passed=not over,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(f"{', '.join(over)}: reject rate above {limit:.1%}" if over else f"reject rate within {limit:.1%}"),
        metadata={
            "rows_read": read,
            "rows_valid": read - rejected,
            "rows_rejected": rejected,
            "reject_rate": dg.MetadataValue.float(round(rejected / read, 6) if read else 0.0),
            "threshold": dg.MetadataValue.float(limit),
            "rate_by_day": dg.MetadataValue.json({key: round(rate, 6) for key, rate in sorted(rates.items())}),
            "top_reasons": "; ".join(f"{reason} ({count})" for reason, count in reasons.items()) or "none",
        },
    )


def row_count_result(source: AnySource, rows: dict[str, int]) -> dg.AssetCheckResult:
    short = sorted(key for key, count in rows.items() if count < source.checks.min_rows)
    return dg.AssetCheckResult(
        check_name=ROW_COUNT,
        passed=not short,
        severity=SEVERITY[source.checks.min_rows_severity],
        description=f"{', '.join(short)}: fewer than {source.checks.min_rows} row(s)" if short else None,
        metadata={"rows": sum(rows.values()), "rows_by_day": dg.MetadataValue.json(dict(sorted(rows.items()))), "min_rows": source.checks.min_rows},
    )


def keys_result(source: AnySource, lake: Lake, dataset: str, keys: list[str]) -> dg.AssetCheckResult:
    columns = source.contract.keys
    problems: dict[str, dict[str, int]] = {}
    for key in keys:
        stats = (
            scan_partition(lake, dataset, key)
            .select(
                pl.any_horizontal(pl.col(columns).is_null()).sum().alias("null_keys"),
                (pl.len() - pl.struct(columns).n_unique()).alias("duplicate_keys"),
            )
            .collect()
            .row(0, named=True)
        )
        if stats["null_keys"] or stats["duplicate_keys"]:
            problems[key] = stats
    return dg.AssetCheckResult(
        check_name=KEYS,
        passed=not problems,
        description=f"{', '.join(sorted(problems))}: null or duplicate keys" if problems else None,
        metadata={
            "key": ", ".join(columns),
            "null_keys": sum(p["null_keys"] for p in problems.values()),
            "duplicate_keys": sum(p["duplicate_keys"] for p in problems.values()),
            "problems_by_day": dg.MetadataValue.json(problems),
        },
    )


def schema_result(lake: Lake, dataset: str, keys: list[str]) -> dg.AssetCheckResult:
    diffs: dict[str, dict[str, object]] = {}
    for key in keys:
        previous_key = (dt.date.fromisoformat(key) - dt.timedelta(days=1)).isoformat()
        previous, current = read_manifest(lake, dataset, previous_key), read_manifest(lake, dataset, key)
        if previous is None or "schema" not in previous:
            continue
        before, after = previous["schema"], current["schema"]
        diff = {
            "added": {c: t for c, t in after.items() if c not in before},
            "removed": {c: t for c, t in before.items() if c not in after},
            "changed": {c: f"{before[c]} -> {t}" for c, t in after.items() if c in before and before[c] != t},
        }
        if any(diff.values()):
            diffs[key] = {part: value for part, value in diff.items() if value}
    return dg.AssetCheckResult(
        check_name=SCHEMA,
        passed=not diffs,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{', '.join(sorted(diffs))}: schema differs from the day before" if diffs else None,
        metadata={"diff_by_day": dg.MetadataValue.json(diffs)},
    )


def check_results(source: AnySource, lake: Lake, dataset: str, tallies: dict[str, Tally]) -> list[dg.AssetCheckResult]:
    keys = sorted(tallies)
    rows = {key: read_manifest(lake, dataset, key)["rows"] for key in keys}
    results = [row_count_result(source, rows)]
    if source.contract is not None:
        results.append(reject_rate_result(source, tallies))
        if source.contract.keys:
            results.append(keys_result(source, lake, dataset, keys))
    if source.checks.schema_change:
        results.append(schema_result(lake, dataset, keys))
    return results
