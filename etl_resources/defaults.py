"""The code location's resources, configured from ETL_* environment variables with embedded local defaults."""

import os

import dagster as dg

from etl_resources.alerts import AlertWebhook
from etl_resources.lake.io_manager import DEFAULT_LAKE_URL, LakeIOManager
from etl_resources.secrets import SecretResolver
from etl_resources.warehouse.audit_queue import DEFAULT_AUDIT_QUEUE
from etl_resources.warehouse.resource import DEFAULT_WAREHOUSE_URL, Warehouse


def _secret_env(name: str) -> dg.EnvVar | None:
    """Secrets go in as EnvVar so their values are read at run time and never shown in the UI."""
    return dg.EnvVar(name) if name in os.environ else None


def default_resources(secrets_file: str, key_vault_url: str | None = None) -> dict[str, dg.ConfigurableResource | dg.ConfigurableIOManager]:
    secrets = SecretResolver(secrets_file=secrets_file, key_vault_url=key_vault_url)
    return {
        "secrets": secrets,
        "warehouse": Warehouse(
            url=os.environ.get("ETL_WAREHOUSE_URL", DEFAULT_WAREHOUSE_URL),
            audit_queue=os.environ.get("ETL_AUDIT_QUEUE", DEFAULT_AUDIT_QUEUE),
            secrets=secrets,
        ),
        "alerts": AlertWebhook(url=_secret_env("ETL_ALERT_WEBHOOK_URL"), ui_url=os.environ.get("ETL_UI_URL", "http://127.0.0.1:3000")),
        "lake_io_manager": LakeIOManager(
            url=os.environ.get("ETL_LAKE_URL", DEFAULT_LAKE_URL),
            account_key=_secret_env("ETL_LAKE_ACCOUNT_KEY"),
            endpoint=os.environ.get("ETL_LAKE_ENDPOINT"),
        ),
    }
