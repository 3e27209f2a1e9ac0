"""What a source's assets, and an export's, are called and how the UI files them, in one place.

Like dagster-sling's and dagster-dbt's translators, but functions: nothing here is meant to be overridden,
and every builder, job, gate and check that names an asset asks these for its key.
"""

from collections.abc import Sequence

import dagster as dg

from etl_resources.config.sources_file import AnySource
from etl_resources.lake.io_manager import LAKE_DATASET
from etl_resources.salesforce.model import SalesforceExport

EXPORTS_GROUP = "exports"

WRITE_MODE_PHRASES = {
    "replace_partition": "replaced as a whole on every load",
    "merge": "upserted on {keys}",
    "append": "appended on every load",
}


# The asset graph labels a node with its key's last segment only: the suffix tells a source's raw, rejects
# and warehouse nodes apart when the source and its table share a name.
def raw_key(source: AnySource) -> dg.AssetKey:
    return dg.AssetKey(["raw", f"{source.name}_raw"])


def rejects_key(source: AnySource) -> dg.AssetKey:
    return dg.AssetKey(["rejects", f"{source.name}_rejects"])


def warehouse_key(source: AnySource) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", *([source.target.schema_] if source.target.schema_ else []), source.target.table])


def export_key(export: SalesforceExport) -> dg.AssetKey:
    return dg.AssetKey(["salesforce", export.name])


# The lake kept its layout when the keys gained their suffix, so lakes written before still load.
def raw_dataset(source_name: str) -> str:
    return f"raw/{source_name}"


def rejects_dataset(source_name: str) -> str:
    return f"rejects/{source_name}"


def source_group(source: AnySource) -> str:
    return source.group or source.name


def _source_spec(
    source: AnySource, key: dg.AssetKey, description: str, kinds: set[str], metadata: dict[str, object], deps: Sequence[dg.AssetKey] = ()
) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=key,
        description=description,
        deps=deps,
        kinds=kinds,
        group_name=source_group(source),
        metadata=metadata,
        owners=source.owners,
        tags=source.tags,
    )


def raw_spec(source: AnySource, source_kind: str) -> dg.AssetSpec:
    """`source_kind` is the kind the UI shows for where the rows come from (a database, a file format, an API)."""
    metadata = {"source": source.name, "kind": source.kind, LAKE_DATASET: raw_dataset(source.name)}
    return _source_spec(source, raw_key(source), source.one_line_description, {source_kind, "parquet"}, metadata)


def rejects_spec(source: AnySource) -> dg.AssetSpec:
    description = f"Rows of {source.name} that could not be read or break its contract, each with its reasons and the original record."
    return _source_spec(source, rejects_key(source), description, {"parquet"}, {LAKE_DATASET: rejects_dataset(source.name)})


def warehouse_spec(source: AnySource, warehouse_kind: str) -> dg.AssetSpec:
    target = source.target
    description = (
        f"{target.qualified} in the warehouse: each day of {raw_key(source).to_user_string()}, "
        f"{WRITE_MODE_PHRASES[target.write_mode].format(keys=', '.join(target.keys))}."
    )
    metadata = {"source": source.name, "dagster/table_name": target.qualified}
    return _source_spec(source, warehouse_key(source), description, {warehouse_kind, "table"}, metadata, deps=[raw_key(source)])


def export_spec(export: SalesforceExport, reads: list[AnySource]) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=export_key(export),
        description=export.description or f"Rows of a warehouse query, upserted each week into Salesforce {export.object} by {export.external_id_field}.",
        deps=[warehouse_key(source) for source in reads],
        kinds={"salesforce"},
        group_name=export.group or EXPORTS_GROUP,
        metadata={"salesforce_object": export.object, "external_id_field": export.external_id_field},
    )
