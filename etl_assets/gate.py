"""The warehouse load's own gate: blocking checks stop downstream steps only inside their run, so a load
launched in another run looks up the checks of the run that wrote the partition it is about to load."""

import dagster as dg
from dagster._core.events import DagsterEventType

from etl_assets.raw_assets import raw_key
from etl_assets.source_checks import check_specs
from etl_resources.config import AnySource


def source_gate_failures(instance: dg.DagsterInstance, source: AnySource, days: list[str]) -> list[str]:
    """Why any of `days` of a source's raw asset may not go downstream; empty when all passed."""
    blocking = [spec for spec in check_specs(source, raw_key(source)) if spec.blocking]
    return [reason for day in days for reason in blocking_check_failures(instance, blocking, raw_key(source), day)]


def blocking_check_failures(instance: dg.DagsterInstance, blocking: list[dg.AssetCheckSpec], upstream: dg.AssetKey, partition_key: str) -> list[str]:
    """Why `partition_key` of `upstream` may not be loaded; empty when its blocking checks passed."""
    if not blocking:
        return []
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=upstream, asset_partitions=[partition_key]), limit=1).records
    if not records:
        return []
    run_id = records[0].run_id
    evaluations = {
        evaluation.check_name: evaluation
        for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
        if (evaluation := record.event_log_entry.dagster_event.asset_check_evaluation_data).asset_key == upstream
    }
    reasons = []
    for spec in blocking:
        evaluation = evaluations.get(spec.name)
        if evaluation is None:
            reasons.append(f"check '{spec.name}' was not evaluated in run {run_id}, which wrote this partition")
        elif not evaluation.passed:
            detail = f": {evaluation.description}" if evaluation.description else ""
            reasons.append(f"check '{spec.name}' failed in run {run_id}{detail}")
    return reasons
