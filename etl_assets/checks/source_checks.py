"""Asset checks generated per source: reject rate (gates the load), row count, keys, schema change.

Every check is partitioned like its asset and records one evaluation per day, in a one-day run and in a
range run alike, with that day's figures; a range run's bad day never colours the good ones.

None is `blocking` in Dagster's sense: Dagster fails the whole step on a failed blocking check and skips
every downstream step of the run, good days included. The warehouse load reads each day's own reject-rate
verdict instead (see gate.py).
"""

import datetime as dt
from dataclasses import dataclass, field

import dagster as dg
import polars as pl
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationTargetMaterializationData

from etl_resources.config.sources_file import AnySource
from etl_resources.lake.store import Lake, read_manifest, scan_partition
from etl_resources.sources.registry import splits_rejects

REJECT_RATE = "reject_rate"
ROW_COUNT = "row_count"
KEYS = "keys_not_null_unique"
SCHEMA = "schema_unchanged"
# Checks whose failed verdict keeps a day out of the warehouse.
GATING = (REJECT_RATE,)
SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


@dataclass
class Tally:
    """What validation saw of one day: rows read, and the rejected rows."""

    read: int = 0
    rejects: list[pl.DataFrame] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(frame.height for frame in self.rejects)

    @property
    def rate(self) -> float:
        return self.rejected / self.read if self.read else 0.0


def check_specs(source: AnySource, asset_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    checks, contract = source.checks, source.contract

    def spec(name: str, description: str, **metadata: object) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(name, asset=asset_key, description=description, partitions_def=partitions_def, metadata=metadata)

    specs = [spec(ROW_COUNT, f"Each day has at least {checks.min_rows} valid row(s).", min_rows=checks.min_rows)]
    if splits_rejects(source):
        specs.append(
            spec(
                REJECT_RATE,
                f"A day whose share of rejected rows (unreadable, or breaking the contract) is above reject_rate_max {checks.reject_rate_max:g} "
                f"is not loaded into {source.target.qualified}; the other days are.",
                reject_rate_max=dg.MetadataValue.float(checks.reject_rate_max),
                gates=source.target.qualified,
            )
        )
    if contract is not None and contract.keys:
        specs.append(spec(KEYS, f"Key ({', '.join(contract.keys)}) is never null and unique within a day.", key=", ".join(contract.keys)))
    if checks.schema_change:
        specs.append(spec(SCHEMA, "Columns and types are the same as the previous day's."))
    return specs


def top_reasons(rejects: list[pl.DataFrame], limit: int = 5) -> dict[str, int]:
    if not rejects:
        return {}
    counts = pl.concat(rejects).select(pl.col("errors").explode().struct.unnest()).group_by("field", "reason").len().sort("len", descending=True).head(limit)
    return {f"{row['field']}: {row['reason']}": row["len"] for row in counts.to_dicts()}


def reject_rate_verdict(source: AnySource, tally: Tally) -> dg.AssetCheckResult:
    limit = source.checks.reject_rate_max
    passed = tally.rate <= limit
    reasons = top_reasons(tally.rejects)
    return dg.AssetCheckResult(
        passed=passed,
        description=(
            f"reject rate {tally.rate:.4g} within reject_rate_max {limit:g}"
            if passed
            else f"reject rate {tally.rate:.4g} above reject_rate_max {limit:g} ({tally.rejected:,} of {tally.read:,} rows): the day is not loaded"
        ),
        metadata={
            "rows_read": tally.read,
            "rows_valid": tally.read - tally.rejected,
            "rows_rejected": tally.rejected,
            "reject_rate": dg.MetadataValue.float(round(tally.rate, 6)),
            "reject_rate_max": dg.MetadataValue.float(limit),
            "top_reasons": "; ".join(f"{reason} ({count})" for reason, count in reasons.items()) or "none",
        },
    )


def row_count_verdict(source: AnySource, rows: int) -> dg.AssetCheckResult:
    minimum = source.checks.min_rows
    return dg.AssetCheckResult(
        passed=rows >= minimum,
        severity=SEVERITY[source.checks.min_rows_severity],
        description=f"{rows:,} row(s)" + (f", fewer than min_rows {minimum}" if rows < minimum else ""),
        metadata={"rows": rows, "min_rows": minimum},
    )


def keys_verdict(source: AnySource, lake: Lake, dataset: str, day: str) -> dg.AssetCheckResult:
    columns = source.contract.keys
    stats = (
        scan_partition(lake, dataset, day)
        .select(
            pl.any_horizontal(pl.col(columns).is_null()).sum().alias("null_keys"),
            (pl.len() - pl.struct(columns).n_unique()).alias("duplicate_keys"),
        )
        .collect()
        .row(0, named=True)
    )
    bad = bool(stats["null_keys"] or stats["duplicate_keys"])
    return dg.AssetCheckResult(
        passed=not bad,
        description=f"{stats['null_keys']:,} null and {stats['duplicate_keys']:,} duplicate key(s)" if bad else None,
        metadata={"key": ", ".join(columns), "null_keys": stats["null_keys"], "duplicate_keys": stats["duplicate_keys"]},
    )


def schema_verdict(lake: Lake, dataset: str, day: str, current: dict) -> dg.AssetCheckResult:
    previous_key = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
    previous = read_manifest(lake, dataset, previous_key)
    if previous is None or "schema" not in previous:
        return dg.AssetCheckResult(
            passed=True, severity=dg.AssetCheckSeverity.WARN, description="no earlier day to compare with", metadata={"compared_with": "none"}
        )
    before, after = previous["schema"], current["schema"]
    diff = {
        "added": {c: t for c, t in after.items() if c not in before},
        "removed": {c: t for c, t in before.items() if c not in after},
        "changed": {c: f"{before[c]} -> {t}" for c, t in after.items() if c in before and before[c] != t},
    }
    diff = {part: value for part, value in diff.items() if value}
    return dg.AssetCheckResult(
        passed=not diff,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"schema differs from {previous_key}'s" if diff else None,
        metadata={"compared_with": previous_key, "diff": dg.MetadataValue.json(diff)},
    )


def day_verdicts(source: AnySource, lake: Lake, dataset: str, day: str, tally: Tally, selected: set[str]) -> dict[str, dg.AssetCheckResult]:
    """The selected checks' verdicts on one day whose raw partition has just been written."""
    manifest = read_manifest(lake, dataset, day)
    verdicts = {}
    if ROW_COUNT in selected:
        verdicts[ROW_COUNT] = row_count_verdict(source, manifest["rows"])
    if REJECT_RATE in selected:
        verdicts[REJECT_RATE] = reject_rate_verdict(source, tally)
    if KEYS in selected:
        verdicts[KEYS] = keys_verdict(source, lake, dataset, day)
    if SCHEMA in selected:
        verdicts[SCHEMA] = schema_verdict(lake, dataset, day, manifest)
    return verdicts


def latest_materialization(instance: dg.DagsterInstance, asset_key: dg.AssetKey, day: str) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[day]), limit=1).records
    return records[0] if records else None


def check_evaluations(
    source: AnySource, instance: dg.DagsterInstance, asset_key: dg.AssetKey, lake: Lake, dataset: str, tallies: dict[str, Tally], selected: set[str]
) -> list[dg.AssetCheckEvaluation]:
    """One evaluation per selected check and day, oldest day first, each tied to the materialization it
    judged: without that, the UI's per-partition check status counts the day as not yet checked."""
    evaluations = []
    for day in sorted(tallies) if selected else []:
        target = latest_materialization(instance, asset_key, day)
        for name, verdict in day_verdicts(source, lake, dataset, day, tallies[day], selected).items():
            evaluations.append(
                dg.AssetCheckEvaluation(
                    asset_key=asset_key,
                    check_name=name,
                    passed=verdict.passed,
                    partition=day,
                    severity=verdict.severity,
                    description=verdict.description,
                    metadata=verdict.metadata,
                    target_materialization_data=None
                    if target is None
                    else AssetCheckEvaluationTargetMaterializationData(storage_id=target.storage_id, run_id=target.run_id, timestamp=target.timestamp),
                )
            )
    return evaluations
