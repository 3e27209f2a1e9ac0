"""Audit rows written from inside asset steps, with the Dagster run id and job."""

import datetime as dt
from pathlib import Path

import dagster as dg

from etl_resources.config.sources_file import AnySource
from etl_resources.salesforce.model import SalesforceExport
from etl_resources.secrets import redact
from etl_resources.warehouse.audit import AuditRow, write_audit_rows
from etl_resources.warehouse.audit_queue import enqueue, replay
from etl_resources.warehouse.resource import Warehouse


def run_origin(run: dg.DagsterRun) -> str:
    """What launched a run, in the words of the UI: a backfill, a schedule, a sensor, a job, or a hand-made selection."""
    tags = run.tags
    for tag, word in (("dagster/backfill", "backfill"), ("dagster/schedule_name", "schedule"), ("dagster/sensor_name", "sensor")):
        if tag in tags:
            return f"{word} {tags[tag]}"
    # Jobs Dagster makes itself for an ad hoc selection start with "__": __ASSET_JOB in the UI,
    # __ephemeral_asset_job__ for dg.materialize.
    return "materialize (ad hoc)" if run.job_name.startswith("__") else f"job {run.job_name}"


def record_audit(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    source: AnySource | SalesforceExport,
    partition_key: str,
    step: str,
    started_at: dt.datetime,
    rows: int | None = None,
    files: int | None = None,
    error: Exception | str | None = None,
    status: str | None = None,
) -> None:
    row = AuditRow(
        run_id=context.run.run_id,
        pipeline_name=run_origin(context.run),
        source_name=source.name,
        protocol=source.protocol,
        target_table=source.target.qualified,
        partition_key=partition_key,
        step=step,
        status=status or ("failure" if error else "success"),
        started_at=started_at,
        finished_at=dt.datetime.now(dt.UTC),
        rows_loaded=rows,
        parquet_files=files,
        error_message=None if error is None else redact(error if isinstance(error, str) else f"{type(error).__name__}: {error}"),
    )
    queue = Path(warehouse.audit_queue)
    try:
        replayed = replay(warehouse.engine(), queue)
        write_audit_rows(warehouse.engine(), [row])
    except Exception as audit_err:
        # The audit must never hide the error that caused the failure it reports, nor be lost with it.
        path = enqueue(queue, row)
        context.log.warning(
            f"could not write the audit row for {source.name} {partition_key} to the warehouse ({type(audit_err).__name__}); "
            f"kept it in {path.resolve()}, and the next run that reaches the warehouse writes it"
        )
        return
    if replayed:
        context.log.info(f"wrote {replayed} audit row(s) that earlier runs had queued in {queue.resolve()}")
