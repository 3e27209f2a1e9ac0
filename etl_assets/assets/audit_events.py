"""Audit rows written from inside asset steps, with the Dagster run id and job: one per day and step attempt."""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class AuditedStep:
    """One step (extract, check, load, export) of one partition of a source or export, from the moment it started;
    each verdict below writes its audit row, finished now."""

    context: dg.AssetExecutionContext
    warehouse: Warehouse
    subject: AnySource | SalesforceExport
    partition_key: str
    step: str
    started_at: dt.datetime = field(default_factory=_now)

    def succeeded(self, rows: int | None = None, files: int | None = None) -> None:
        self._record("success", rows=rows, files=files)

    def failed(self, error: Exception | str, rows: int | None = None) -> None:
        """`rows` is what got through before the step failed (records Salesforce accepted)."""
        self._record("failure", rows=rows, error=error)

    def blocked(self, reason: Exception | str) -> None:
        """A check or the gate refused the partition: the step did not run."""
        self._record("blocked", error=reason)

    @contextmanager
    def failure_recorded(self) -> Iterator[None]:
        """What raises inside is audited as this step's failure, then goes on up."""
        try:
            yield
        except Exception as err:
            self.failed(err)
            raise

    def _record(self, status: str, rows: int | None = None, files: int | None = None, error: Exception | str | None = None) -> None:
        row = AuditRow(
            run_id=self.context.run.run_id,
            pipeline_name=run_origin(self.context.run),
            source_name=self.subject.name,
            protocol=self.subject.protocol,
            target_table=self.subject.target.qualified,
            partition_key=self.partition_key,
            step=self.step,
            status=status,
            started_at=self.started_at,
            finished_at=_now(),
            rows_loaded=rows,
            parquet_files=files,
            error_message=None if error is None else redact(error if isinstance(error, str) else f"{type(error).__name__}: {error}"),
        )
        _write(self.context, self.warehouse, row)


def _write(context: dg.AssetExecutionContext, warehouse: Warehouse, row: AuditRow) -> None:
    queue = Path(warehouse.audit_queue)
    try:
        replayed = replay(warehouse.engine(), queue)
        write_audit_rows(warehouse.engine(), [row])
    except Exception as audit_err:
        # The audit must never hide the error that caused the failure it reports, nor be lost with it.
        path = enqueue(queue, row)
        context.log.warning(
            f"could not write the audit row for {row.source_name} {row.partition_key} to the warehouse ({type(audit_err).__name__}); "
            f"kept it in {path.resolve()}, and the next run that reaches the warehouse writes it"
        )
        return
    if replayed:
        context.log.info(f"wrote {replayed} audit row(s) that earlier runs had queued in {queue.resolve()}")
