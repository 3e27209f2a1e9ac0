"""The code location: assets from the sources file (ETL_SOURCES_FILE, default the bundled demo) and their resources."""

import os
from pathlib import Path

import dagster as dg

from etl_assets.automation.alert_sensor import failure_alerts
from etl_assets.demo.shop import DEMO_SOURCES_FILE, ensure_demo_database, ensure_demo_secret
from etl_assets.sources_component import SourcesComponent
from etl_resources.defaults import default_resources
from etl_resources.secrets import DEFAULT_SECRETS_FILE, KEY_VAULT_URL_ENV
from etl_resources.sources.sql.kind_tag import database_kind


def build_definitions(sources_file: Path, secrets_file: str) -> dg.Definitions:
    if sources_file == DEMO_SOURCES_FILE:
        ensure_demo_database()
        ensure_demo_secret(Path(secrets_file))
    key_vault_url = os.environ.get(KEY_VAULT_URL_ENV)
    resources = default_resources(secrets_file, key_vault_url)
    component = SourcesComponent(
        sources_file=str(sources_file),
        secrets_file=secrets_file,
        key_vault_url=key_vault_url,
        warehouse_kind=database_kind(resources["warehouse"].url),
        warehouse_url=resources["warehouse"].url,
    )
    return dg.Definitions.merge(dg.build_defs_for_component(component), dg.Definitions(resources=resources, sensors=[failure_alerts]))


defs = build_definitions(
    Path(os.environ.get("ETL_SOURCES_FILE", DEMO_SOURCES_FILE)),
    os.environ.get("ETL_SECRETS_FILE", DEFAULT_SECRETS_FILE),
)
