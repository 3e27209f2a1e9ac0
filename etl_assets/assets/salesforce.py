"""Reverse ETL: a weekly asset per export that sends a warehouse query's rows to Salesforce, and its schedule.

Weekly partitions over the daily ones: a week is a unit in Salesforce (one metric row per customer and week),
so a backfill of weeks, the week's materialization and its audit row line up with what the CRM holds. The
export depends on the warehouse tables it reads, and runs only when every day of the week passed its
blocking checks, the same rule the warehouse load applies across runs.
"""

import datetime as dt

import dagster as dg
import polars as pl
import sqlalchemy as sa

from etl_assets.assets.audit_events import AuditedStep
from etl_assets.checks.gate import source_gate_failures
from etl_assets.partitions import weekly_partitions
from etl_assets.translator import export_key, export_spec
from etl_resources.config.sources_file import AnySource
from etl_resources.salesforce.client import BulkClient
from etl_resources.salesforce.model import SalesforceConnection, SalesforceExport
from etl_resources.secrets import SecretResolver
from etl_resources.warehouse.resource import Warehouse


def week_days(start: dt.datetime, end: dt.datetime) -> list[str]:
    return [(start.date() + dt.timedelta(days=i)).isoformat() for i in range((end.date() - start.date()).days)]


def filled(connection: SalesforceConnection, secrets: SecretResolver) -> SalesforceConnection:
    values = connection.model_dump()
    return SalesforceConnection(**{key: secrets.substitute(value) if isinstance(value, str) else value for key, value in values.items()})


def build_export_asset(export: SalesforceExport, sources: dict[str, AnySource]) -> dg.AssetsDefinition:
    reads = [sources[name] for name in export.reads]

    spec = export_spec(export, reads)

    @dg.multi_asset(name=spec.key.to_python_identifier(), specs=[spec], partitions_def=weekly_partitions(export.start_date))
    def _export(context: dg.AssetExecutionContext, warehouse: Warehouse, secrets: SecretResolver) -> dg.MaterializeResult:
        window = context.partition_time_window
        week = context.partition_key
        step = AuditedStep(context, warehouse, export, week, "export")
        reasons = [reason for source in reads for reason in source_gate_failures(context.instance, source, week_days(window.start, window.end))]
        if reasons:
            failure = dg.Failure(description=f"not sending week {week} to Salesforce {export.object}: {'; '.join(reasons)}", allow_retries=False)
            step.blocked(failure)
            raise failure
        params = {"start": window.start.date().isoformat(), "end": window.end.date().isoformat()}
        with warehouse.engine().connect() as conn:
            result = conn.execute(sa.text(export.query), params)
            frame = pl.DataFrame([tuple(row) for row in result], schema=list(result.keys()), orient="row", infer_schema_length=None)
        context.log.info(f"{export.name} {week}: {frame.height:,} row(s) to upsert into {export.object}")
        client = BulkClient(filled(export.connection, secrets))
        try:
            with step.failure_recorded():
                client.sign_in()
                sent = client.upsert(export.object, export.external_id_field, frame, export.batch_size, context.log)
        finally:
            client.close()
        metadata = {
            "dagster/row_count": sent.sent,
            "sent": sent.sent,
            "succeeded": sent.succeeded,
            "failed": sent.failed,
            "failed_share": round(sent.failed_share, 4),
            "jobs": dg.MetadataValue.json(sent.jobs),
            "failure_samples": dg.MetadataValue.json(sent.samples),
        }
        if sent.failed_share > export.max_failed_share:
            samples = "; ".join(f"{s['external_id']}: {s['error']}" for s in sent.samples)
            message = (
                f"{sent.failed:,} of {sent.sent:,} records ({sent.failed_share:.1%}) failed in Salesforce {export.object}, "
                f"over max_failed_share {export.max_failed_share:.0%}; first errors: {samples}"
            )
            step.failed(message, rows=sent.succeeded)
            raise dg.Failure(description=message, metadata=metadata, allow_retries=False)
        if sent.failed:
            context.log.warning(f"{export.name} {week}: {sent.failed:,} of {sent.sent:,} records failed (within {export.max_failed_share:.0%}): {sent.samples}")
        step.succeeded(rows=sent.succeeded)
        return dg.MaterializeResult(metadata=metadata)

    return _export


def export_job_and_schedule(export: SalesforceExport):
    job = dg.define_asset_job(
        name=f"{export.name}_weekly", selection=dg.AssetSelection.assets(export_key(export)), partitions_def=weekly_partitions(export.start_date)
    )
    if export.schedule is None:
        return job, None

    @dg.schedule(
        name=f"{export.name}_schedule",
        cron_schedule=export.schedule,
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{export.name}: the last complete week (Monday to Sunday, UTC).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        today = context.scheduled_execution_time.astimezone(dt.UTC).date()
        monday = today - dt.timedelta(days=today.weekday() + 7)
        if monday < export.start_date:
            return dg.SkipReason(f"{export.name}: no complete week yet since start_date {export.start_date}")
        return dg.RunRequest(partition_key=monday.isoformat())

    return job, _schedule
