"""Audit rows written from inside asset steps, with the Dagster run id and job."""

import datetime as dt
from pathlib import Path

import dagster as dg

from etl_resources.audit import AuditRow, write_audit_rows
from etl_resources.audit_queue import enqueue, replay
from etl_resources.config import AnySource, SalesforceExport
from etl_resources.secrets import redact
from etl_resources.warehouse import Warehouse


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
        pipeline_name=context.job_name,
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
