"""Alerts for failed runs and failed asset checks.

A failed check that is not blocking leaves its run green, so a run-failure sensor alone would miss it:
this sensor reads both kinds of event from the instance, after a cursor, and posts each one once.
"""

import json

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecord, AssetCheckExecutionRecordStatus

from etl_assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from etl_resources.alerts import AlertWebhook

BATCH = 100


def _partition(run: dg.DagsterRun | None) -> str | None:
    if run is None:
        return None
    tags = run.tags
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    return f"{start}...{end}" if start else None


def _check_alert(entry: dg.EventLogEntry, run_id: str, run: dg.DagsterRun | None, webhook: AlertWebhook) -> dict:
    evaluation = entry.dagster_event.asset_check_evaluation_data
    asset = evaluation.asset_key.to_user_string()
    reason = evaluation.description or "failed"
    # Source checks judge one day each; a check without partitions (freshness) is named by its run's days.
    partition = evaluation.partition or _partition(run)
    return {
        "text": f"Check {evaluation.check_name} failed on {asset} ({partition or 'unpartitioned'}): {reason}. {webhook.run_link(run_id)}",
        "kind": "asset_check",
        "asset": asset,
        "partition": partition,
        "check": evaluation.check_name,
        "severity": evaluation.severity.value,
        "reason": reason,
        "run_id": run_id,
        "run_url": webhook.run_link(run_id),
    }


def step_failures(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """What each failed step of a run said, first line first: the run's own message names only the steps."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records
    return [
        f"{event.step_key}: {error.message.strip()}"
        for record in records
        if (event := record.event_log_entry.dagster_event) and (error := event.step_failure_data.error) is not None
    ]


def _run_alert(record: dg.EventLogRecord, run: dg.DagsterRun | None, planned: list[dg.AssetKey], steps: list[str], webhook: AlertWebhook) -> dict:
    assets = sorted(key.to_user_string() for key in planned)
    reason = "\n".join([record.event_log_entry.dagster_event.message or "run failed", *steps])
    return {
        "text": f"Run {record.run_id[:8]} failed ({', '.join(assets) or (run.job_name if run else '')}, "
        f"{_partition(run) or 'unpartitioned'}): {reason} {webhook.run_link(record.run_id)}",
        "kind": "run_failure",
        "asset": ", ".join(assets) or None,
        "partition": _partition(run),
        "check": None,
        "reason": reason,
        "run_id": record.run_id,
        "run_url": webhook.run_link(record.run_id),
    }


def failed_runs(instance: dg.DagsterInstance, after: int) -> list[dg.EventLogRecord]:
    return instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(event_type=DagsterEventType.RUN_FAILURE, after_storage_id=after), limit=BATCH, ascending=True
    ).records


def failed_checks(instance: dg.DagsterInstance, check_keys: list[dg.AssetCheckKey], after: int) -> list[AssetCheckExecutionRecord]:
    """Failed check executions with ids after `after`, oldest first.

    Read per check from the check-execution index, which, unlike the local SQLite event log, is not
    split per run, so one id orders them all.
    """
    failed = [
        execution
        for key in check_keys
        for execution in instance.event_log_storage.get_asset_check_execution_history(key, limit=BATCH, status={AssetCheckExecutionRecordStatus.FAILED})
        if execution.id > after and execution.event is not None
    ]
    return sorted(failed, key=lambda execution: execution.id)


@dg.sensor(
    name="etl_failure_alerts",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts failed runs and failed asset checks to the alert webhook, once each.",
)
def failure_alerts(context: dg.SensorEvaluationContext, alerts: AlertWebhook) -> dg.SkipReason:
    if not alerts.url:
        return dg.SkipReason("no alert webhook: set ETL_ALERT_WEBHOOK_URL")
    state = {"runs": 0, "checks": 0} | (json.loads(context.cursor) if context.cursor else {})
    sent = 0
    # A failed post raises before the cursor moves past it, so that alert is tried again next tick.
    for execution in failed_checks(context.instance, sorted(context.repository_def.asset_graph.asset_check_keys), state["checks"]):
        alerts.post(_check_alert(execution.event, execution.run_id, context.instance.get_run_by_id(execution.run_id), alerts))
        sent += 1
        state["checks"] = execution.id
        context.update_cursor(json.dumps(state))
    for record in failed_runs(context.instance, state["runs"]):
        planned = context.instance.event_log_storage.get_asset_partitions_for_run(record.run_id, DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
        steps = step_failures(context.instance, record.run_id)
        alerts.post(_run_alert(record, context.instance.get_run_by_id(record.run_id), list(planned), steps, alerts))
        sent += 1
        state["runs"] = record.storage_id
        context.update_cursor(json.dumps(state))
    return dg.SkipReason(f"posted {sent} alert(s)")
