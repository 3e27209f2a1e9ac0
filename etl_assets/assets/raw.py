"""Raw assets: each source's rows for a day, validated against its contract, stored as Parquet by the lake IO manager.

One step per source materializes `raw/<source>_raw`, `rejects/<source>_rejects` (when its days have rejects)
and runs the source's checks. Their lake folders stay `raw/<source>` and `rejects/<source>`.
"""

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import polars as pl

from etl_assets.assets.audit_events import AuditedStep
from etl_assets.checks.source_checks import REJECT_RATE, Tally, check_evaluations, check_specs
from etl_assets.partitions import backfill_policy, daily_partitions, existing_keys, partition_window
from etl_assets.translator import raw_dataset, raw_key, raw_spec, rejects_spec
from etl_resources.config.model import Contract, StepRetries
from etl_resources.config.sources_file import AnySource
from etl_resources.contract.rules import REJECT_SCHEMA, apply_contract
from etl_resources.lake.io_manager import LakeIOManager, PartitionStream
from etl_resources.secrets import SecretResolver
from etl_resources.sources.base import ExtractRun
from etl_resources.sources.registry import kind_of, splits_rejects
from etl_resources.warehouse.resource import Warehouse


def _batches(source: AnySource, run: ExtractRun) -> Iterator[pl.DataFrame]:
    return kind_of(source.kind).extract(source, run)


def source_kind(source: AnySource) -> str:
    return kind_of(source.kind).ui_kind(source)


def _validated(frames: Iterator[pl.DataFrame], contract: Contract | None, partition_key: str, tally: Tally) -> Iterator[pl.DataFrame]:
    for frame in frames:
        split = apply_contract(contract, frame, tally.read, partition_key)
        tally.read += frame.height
        if split.rejects.height:
            tally.rejects.append(split.rejects)
        yield split.valid


def _drain(stream: PartitionStream) -> None:
    """Validate a day without storing it, when only its rejects are selected."""
    try:
        for _ in stream.frames:
            pass
    except Exception as err:
        stream.on_failure(err)
        raise


def retry_policy(retries: StepRetries) -> dg.RetryPolicy | None:
    """Re-running a failed extract is safe: every attempt commits its lake partition whole or not at all.
    Only failures that may pass are retried (a lost connection, a server restarting; see etl_resources/databases/transient.py)."""
    if not retries.max_retries:
        return None
    backoff = dg.Backoff.EXPONENTIAL if retries.backoff == "exponential" else dg.Backoff.LINEAR
    return dg.RetryPolicy(max_retries=retries.max_retries, delay=retries.delay_seconds, backoff=backoff, jitter=dg.Jitter.PLUS_MINUS)


def _one_or_many(by_key: dict):
    return by_key if len(by_key) > 1 else next(iter(by_key.values()))


def build_raw_asset(source: AnySource) -> dg.AssetsDefinition:
    partitions_def = daily_partitions(source.start_date)
    kind = source_kind(source)
    outs = {"raw": dg.AssetOut.from_spec(raw_spec(source, kind), io_manager_key="lake_io_manager", is_required=False)}
    if splits_rejects(source):
        outs["rejects"] = dg.AssetOut.from_spec(rejects_spec(source), io_manager_key="lake_io_manager", is_required=False)

    @dg.multi_asset(
        name=f"extract_{source.name}",
        outs=outs,
        partitions_def=partitions_def,
        backfill_policy=backfill_policy(source.backfill_days_per_run),
        check_specs=check_specs(source, raw_key(source), partitions_def),
        retry_policy=retry_policy(source.step_retries),
        # A backfill may pick raw and warehouse without rejects, or rejects alone.
        can_subset=True,
    )
    def _extract(
        context: dg.AssetExecutionContext,
        secrets: SecretResolver,
        warehouse: Warehouse,
        lake_io_manager: dg.ResourceParam[LakeIOManager],
    ):
        started = dt.datetime.now(dt.UTC)
        keys = existing_keys(context, partitions_def)
        tallies = {key: Tally() for key in keys}
        streams = {}
        for key in keys:
            run = ExtractRun(partition_window(partitions_def, key), key, secrets, lake_io_manager, context.log)
            frames = _validated(_batches(source, run), source.contract, key, tallies[key])
            extract_step = AuditedStep(context, warehouse, source, key, "extract", started)
            streams[key] = PartitionStream(frames=frames, on_failure=extract_step.failed, retryable=lambda err: getattr(err, "transient", False))
        selected = context.op_execution_context.selected_output_names
        checks = {key.name for key in context.selected_asset_check_keys if key.asset_key == raw_key(source)}
        if checks and "raw" not in selected:
            raw = raw_key(source).to_user_string()
            raise dg.Failure(description=f"the checks of {raw} judge the rows this step writes: select {raw} with them", allow_retries=False)
        # Each Output is stored before this generator resumes, so the tallies are complete below.
        if "raw" in selected:
            yield dg.Output(_one_or_many(streams), output_name="raw")
        else:
            for stream in streams.values():
                _drain(stream)
        for key, tally in tallies.items():
            if tally.rejected:
                context.log.warning(f"{source.name} {key}: {tally.rejected:,} of {tally.read:,} rows rejected")
        if "rejects" in selected:
            rejects = {key: tally.rejects or [pl.DataFrame(schema=REJECT_SCHEMA)] for key, tally in tallies.items()}
            yield dg.Output(_one_or_many(rejects), output_name="rejects")
        evaluations = check_evaluations(source, context.instance, raw_key(source), lake_io_manager.lake(), raw_dataset(source.name), tallies, checks)
        for evaluation in evaluations:
            if not evaluation.passed and evaluation.check_name == REJECT_RATE:
                # The load will not take this day; the audit log says why.
                AuditedStep(context, warehouse, source, evaluation.partition, "check", started).blocked(evaluation.description)
        yield from evaluations

    return _extract
