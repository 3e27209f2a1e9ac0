"""The warehouse load's own gate: blocking checks stop downstream steps only inside their run, so a load
launched in another run looks up the checks of the run that wrote the partition it is about to load."""

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

HISTORY = 100


def blocking_check_failures(instance: dg.DagsterInstance, blocking: list[dg.AssetCheckSpec], upstream: dg.AssetKey, partition_key: str) -> list[str]:
    """Why `partition_key` of `upstream` may not be loaded; empty when its blocking checks passed."""
    if not blocking:
        return []
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=upstream, asset_partitions=[partition_key]), limit=1).records
    if not records:
        return []
    run_id = records[0].run_id
    reasons = []
    for spec in blocking:
        history = instance.event_log_storage.get_asset_check_execution_history(spec.key, limit=HISTORY)
        execution = next((record for record in history if record.run_id == run_id), None)
        if execution is None:
            reasons.append(f"check '{spec.name}' was not evaluated in run {run_id}, which wrote this partition")
        elif execution.status == AssetCheckExecutionRecordStatus.FAILED:
            evaluation = execution.event.dagster_event.asset_check_evaluation_data if execution.event else None
            detail = f": {evaluation.description}" if evaluation and evaluation.description else ""
            reasons.append(f"check '{spec.name}' failed in run {run_id}{detail}")
    return reasons
