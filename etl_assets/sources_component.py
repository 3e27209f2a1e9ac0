"""The Component that turns a sources file into assets: a raw (lake) and a warehouse asset per enabled source."""

from pathlib import Path

import dagster as dg

from etl_assets.assets.raw import build_raw_asset
from etl_assets.assets.salesforce import build_export_asset, export_job_and_schedule
from etl_assets.assets.warehouse import build_warehouse_asset
from etl_assets.automation.landing_sensor import landing_sensor
from etl_assets.automation.schedules import source_job, source_schedule
from etl_assets.checks.freshness import freshness_checks, freshness_sensor
from etl_resources.config.sources_file import load_sources
from etl_resources.secrets import DEFAULT_SECRETS_FILE, SecretStore
from etl_resources.sources.registry import kind_of


class SourcesComponent(dg.Component, dg.Model, dg.Resolvable):
    """Raw and warehouse assets, a job and a schedule for every enabled source in a sources YAML file."""

    sources_file: str
    secrets_file: str = DEFAULT_SECRETS_FILE
    key_vault_url: str | None = None
    warehouse_kind: str = "sql"
    # Target names are checked against this warehouse's naming rules; None checks them against every supported one.
    warehouse_url: str | None = None

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        config = load_sources(Path(self.sources_file), SecretStore(Path(self.secrets_file), self.key_vault_url), self.warehouse_url)
        sources = config.enabled
        jobs = {source.name: source_job(source) for source in sources}
        by_name = {source.name: source for source in sources}
        exports = [export for export in config.exports if all(name in by_name for name in export.reads)]
        export_jobs = [export_job_and_schedule(export) for export in exports]
        warehouse = {source.name: build_warehouse_asset(source, self.warehouse_kind) for source in sources}
        checks = freshness_checks(sources, warehouse)
        return dg.Definitions(
            assets=[build_raw_asset(source) for source in sources] + list(warehouse.values()) + [build_export_asset(e, by_name) for e in exports],
            asset_checks=checks,
            jobs=list(jobs.values()) + [job for job, _ in export_jobs],
            schedules=[source_schedule(source, jobs[source.name]) for source in sources if source.schedule]
            + [schedule for _, schedule in export_jobs if schedule is not None],
            sensors=([freshness_sensor(checks)] if checks else [])
            + [landing_sensor(source, jobs[source.name], kind_of(source.kind).arrivals) for source in sources if kind_of(source.kind).arrivals],
        )
