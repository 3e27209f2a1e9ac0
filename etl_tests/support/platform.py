"""Drives the platform the way a deployment does: a sources file, ETL_* variables, the code location's Definitions."""

import textwrap
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from etl_assets.definitions import build_definitions
from etl_assets.partitions import range_tags
from etl_resources.lake.store import Lake, read_manifest


@dataclass
class Platform:
    workdir: Path
    instance: dg.DagsterInstance
    monkeypatch: pytest.MonkeyPatch

    def configure(self, sources_yaml: str, **env: str) -> dg.Definitions:
        """Write the sources file, set ETL_<NAME> for each keyword, and load the code location."""
        path = self.workdir / "sources.yaml"
        path.write_text(textwrap.dedent(sources_yaml))
        self.monkeypatch.setenv("ETL_SOURCES_FILE", str(path))
        for name, value in env.items():
            self.monkeypatch.setenv(f"ETL_{name.upper()}", value)
        return build_definitions(path, str(self.workdir / ".etl/secrets.toml"))

    def materialize(self, defs: dg.Definitions, start: str, end: str | None = None, selection: list[str] | None = None, raise_on_error: bool = True):
        """One run over a partition, or over start..end as a single-run backfill."""
        kwargs = {"partition_key": start} if end is None else {"tags": range_tags(start, end)}
        return dg.materialize(
            list(defs.assets),
            resources=defs.resources,
            instance=self.instance,
            selection=[dg.AssetKey.from_user_string(key) for key in selection] if selection else None,
            raise_on_error=raise_on_error,
            **kwargs,
        )

    @staticmethod
    def lake(defs: dg.Definitions) -> Lake:
        with dg.build_resources({"lake": defs.resources["lake_io_manager"]}) as resources:
            return resources.lake.lake()

    def manifest(self, defs: dg.Definitions, dataset: str, partition: str) -> dict | None:
        return read_manifest(self.lake(defs), dataset, partition)

    def partition_listing(self, defs: dg.Definitions, dataset: str, partition: str) -> list[str]:
        lake = self.lake(defs)
        return sorted(path.rsplit("/", 1)[1] for path in lake.fs.ls(lake.partition_dir(dataset, partition), detail=False))

    @staticmethod
    def query(defs: dg.Definitions, sql: str, **params) -> list[tuple]:
        with defs.resources["warehouse"].engine().begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return [tuple(row) for row in result] if result.returns_rows else []

    def materialized_partitions(self, asset_key: list[str]) -> set[str]:
        return self.instance.get_materialized_partitions(dg.AssetKey(asset_key))
