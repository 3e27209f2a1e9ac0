"""Audit rows written from inside asset steps, with the Dagster run id and job."""

import datetime as dt

import dagster as dg

from etl_resources.audit import AuditRow, write_audit_row
from etl_resources.config import AnySource
from etl_resources.warehouse import Warehouse


def record_audit(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    source: AnySource,
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
        error_message=error if isinstance(error, str) or error is None else f"{type(error).__name__}: {error}",
    )
    try:
        write_audit_row(warehouse.engine(), row)
    except Exception as audit_err:
        # The audit must never hide the error that caused the failure it reports.
        context.log.warning(f"could not write the audit row for {source.name} {partition_key}: {audit_err}")
