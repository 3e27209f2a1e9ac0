"""The warehouse load's own gate, day by day.

Dagster's blocking checks act on a whole run, so the load looks up, for each day it is about to load, the
verdicts that the run which wrote that day's raw partition recorded for that very day. A day loads when its
gating checks passed; a failed or missing verdict refuses it, and only it.
"""

import dagster as dg
from dagster._core.events import DagsterEventType

from etl_assets.checks.source_checks import GATING, latest_materialization
from etl_assets.translator import raw_key
from etl_resources.config.sources_file import AnySource
from etl_resources.sources.registry import splits_rejects


def gating_checks(source: AnySource) -> list[str]:
    return list(GATING) if splits_rejects(source) else []


def gate_refusals(instance: dg.DagsterInstance, source: AnySource, days: list[str]) -> dict[str, str]:
    """Why each of `days` may not go downstream, for the days that may not; the others are absent."""
    checks = gating_checks(source)
    if not checks:
        return {}
    upstream = raw_key(source)
    verdicts_by_run: dict[str, dict[tuple[str, str | None], dg.AssetCheckEvaluation]] = {}
    refusals = {}
    for day in days:
        record = latest_materialization(instance, upstream, day)
        if record is None:
            # A lake day no run recorded under this key (written before the key gained its suffix, or by
            # hand) has no verdict to pass; a day missing from the lake fails the load before the gate.
            refusals[day] = f"{upstream.to_user_string()} has no materialization for {day}, so no verdict of its checks"
            continue
        run_id = record.run_id
        if run_id not in verdicts_by_run:
            verdicts_by_run[run_id] = run_verdicts(instance, run_id, upstream)
        reasons = [reason for check in checks if (reason := day_refusal(verdicts_by_run[run_id], check, day, run_id))]
        if reasons:
            refusals[day] = "; ".join(reasons)
    return refusals


def run_verdicts(instance: dg.DagsterInstance, run_id: str, asset_key: dg.AssetKey) -> dict[tuple[str, str | None], dg.AssetCheckEvaluation]:
    """The check evaluations a run recorded for an asset, by check name and partition."""
    return {
        (evaluation.check_name, evaluation.partition): evaluation
        for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
        if (evaluation := record.event_log_entry.dagster_event.asset_check_evaluation_data).asset_key == asset_key
    }


def day_refusal(verdicts: dict[tuple[str, str | None], dg.AssetCheckEvaluation], check: str, day: str, run_id: str) -> str | None:
    evaluation = verdicts.get((check, day))
    if evaluation is None:
        return f"check '{check}' has no verdict for {day} from run {run_id}, which wrote it"
    if not evaluation.passed:
        detail = f": {evaluation.description}" if evaluation.description else ""
        return f"check '{check}' failed for {day} in run {run_id}{detail}"
    return None


def source_gate_failures(instance: dg.DagsterInstance, source: AnySource, days: list[str]) -> list[str]:
    """Why any of `days` may not go downstream; empty when all may."""
    return list(gate_refusals(instance, source, days).values())
