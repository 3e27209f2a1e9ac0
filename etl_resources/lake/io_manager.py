"""IO manager that stores daily-partitioned assets as Parquet partitions in the lake, including partition ranges."""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import dagster as dg
import polars as pl
from pydantic import PrivateAttr

from etl_resources.lake.day_schema import type_name
from etl_resources.lake.store import Lake, PartitionWrite, open_lake, scan_partition, write_partition
from etl_resources.secrets import redact

DEFAULT_LAKE_URL = ".etl/lake"
SOURCE_FILE_COLUMN = "_source_file"


@dataclass(frozen=True)
class PartitionStream:
    """One partition's batches, whom to tell if writing them fails (in the extract or in the commit), and
    which failures a step retry may cure; any other fails the step at once, whatever its RetryPolicy."""

    frames: Iterable[pl.DataFrame]
    on_failure: Callable[[Exception], None]
    retryable: Callable[[Exception], bool] = lambda err: True


Frames = pl.DataFrame | Iterable[pl.DataFrame] | PartitionStream

# Definition metadata naming an asset's folder in the lake, so its key can change without moving its files.
LAKE_DATASET = "lake_dataset"


def dataset_name(asset_key: dg.AssetKey, definition_metadata: Mapping[str, object] | None = None) -> str:
    """The asset's folder in the lake: the one its definition names, else its key's path."""
    if definition_metadata and LAKE_DATASET in definition_metadata:
        return str(definition_metadata[LAKE_DATASET])
    return "/".join(asset_key.path)


def column_schema(schema: pl.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, type_name(dtype)) for name, dtype in schema.items()])


def write_metadata(lake: Lake, written: PartitionWrite) -> dict[str, object]:
    return {
        "dagster/row_count": written.rows,
        "dagster/column_schema": column_schema(written.schema),
        "lake_path": dg.MetadataValue.path(lake.display(written.files[0].rsplit("/", 1)[0])),
        "parquet_files": len(written.files),
        "size_bytes": written.bytes,
    }


class LakeIOManager(dg.ConfigurableIOManager):
    """Parquet partitions at <url>/<dataset>/date=YYYY-MM-DD/: a local folder, or abfss:// on ADLS Gen2. The
    dataset is the output's `lake_dataset` definition metadata, else its asset key's path.

    Outputs may be one frame, an iterable of frames (streamed batch by batch), a `PartitionStream`, or, for a
    run over a partition range, a mapping of partition key to any of these. Inputs load as `pl.LazyFrame`
    (with a `_source_file` column), or a mapping of partition key to `pl.LazyFrame` for several partitions.
    """

    url: str = DEFAULT_LAKE_URL
    account_key: str | None = None
    endpoint: str | None = None
    _lake: Lake | None = PrivateAttr(default=None)

    def lake(self) -> Lake:
        if self._lake is None:
            self._lake = open_lake(self.url, self.account_key, self.endpoint)
        return self._lake

    def landing(self, url: str) -> Lake:
        """A landing folder or container for file drops, reached with the lake's credentials."""
        return open_lake(url, self.account_key, self.endpoint)

    def handle_output(self, context: dg.OutputContext, obj: Frames | Mapping[str, Frames]) -> None:
        if obj is None:
            return
        lake = self.lake()
        dataset = dataset_name(context.asset_key, context.definition_metadata)
        keys = context.asset_partition_keys if context.has_asset_partitions else []
        if len(keys) > 1 or isinstance(obj, Mapping):
            if not isinstance(obj, Mapping) or not set(keys) <= set(obj):
                raise dg.DagsterInvariantViolationError(
                    f"{dataset}: a run over partitions {keys[0]}..{keys[-1]} must return a mapping with one entry per partition key"
                )
            by_key = obj
        elif keys:
            by_key = {keys[0]: obj}
        else:
            raise dg.DagsterInvariantViolationError(f"{dataset}: the lake IO manager stores daily-partitioned assets only")
        for key in keys:
            stream = _as_stream(by_key[key])
            try:
                written = write_partition(lake, dataset, key, stream.frames, context.log)
            except Exception as err:
                stream.on_failure(err)
                if not stream.retryable(err):
                    # The notes say what else went wrong on the way out (a staging folder that could not be removed).
                    notes = "".join(f"\n{note}" for note in getattr(err, "__notes__", []))
                    raise dg.Failure(description=redact(f"{type(err).__name__}: {err}{notes}"), allow_retries=False) from err
                raise
            context.step_context.add_asset_metadata(write_metadata(lake, written), asset_key=context.asset_key, partition_key=key)

    def load_input(self, context: dg.InputContext) -> pl.LazyFrame | dict[str, pl.LazyFrame]:
        lake = self.lake()
        upstream = context.upstream_output
        dataset = dataset_name(context.asset_key, upstream.definition_metadata if upstream is not None else None)
        keys = context.asset_partition_keys
        frames = {key: scan_partition(lake, dataset, key, file_column=SOURCE_FILE_COLUMN) for key in keys}
        return frames if len(keys) > 1 else frames[keys[0]]


def _as_stream(frames: Frames) -> PartitionStream:
    if isinstance(frames, PartitionStream):
        return frames
    return PartitionStream(frames=[frames] if isinstance(frames, pl.DataFrame) else frames, on_failure=lambda err: None)
