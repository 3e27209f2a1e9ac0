"""The production files: the Dockerfile passes hadolint, and the production instance config starts an
instance whose storage is a real PostgreSQL. No Docker engine runs here, so the image itself is not built;
the Blob compute-log manager is created but never uploads (no Azure account is reachable)."""

import subprocess

import dagster as dg
import pytest
import yaml
from dagster._core.workspace.config_schema import process_workspace_config

from etl_tests.support.servers import REPO


def test_the_dockerfile_passes_hadolint():
    result = subprocess.run([str(REPO / ".venv/bin/hadolint"), "Dockerfile"], cwd=REPO, capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def production_instance(postgres, tmp_path, monkeypatch):
    database = postgres.create_database("dagster")
    for name, value in {"HOST": "127.0.0.1", "USER": "postgres", "PASSWORD": "unused-with-trust-auth", "DB": database}.items():
        monkeypatch.setenv(f"DAGSTER_PG_{name}", value)
    monkeypatch.setenv("DAGSTER_LOGS_STORAGE_ACCOUNT", "etllogs")
    config = yaml.safe_load((REPO / "infra/dagster/dagster.yaml").read_text())
    # The server in the tests listens on its own port and speaks no TLS.
    config["storage"]["postgres"]["postgres_db"] |= {"port": postgres.port, "params": {"sslmode": "disable"}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    yield instance
    instance.dispose()


def test_the_production_instance_keeps_its_records_in_postgresql(production_instance):
    instance = production_instance

    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="probe", metadata={"rows": 3}))

    event = instance.get_latest_materialization_event(dg.AssetKey("probe"))
    assert event.asset_materialization.metadata["rows"].value == 3
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.compute_log_manager).__name__ == "AzureBlobComputeLogManager"
    assert instance.run_monitoring_enabled and instance.run_retries_enabled and instance.run_retries_max_retries == 2
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 4
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 300


def test_the_production_workspace_reaches_the_code_location_over_grpc(monkeypatch):
    monkeypatch.setenv("ETL_CODE_LOCATION_HOST", "etl-code")
    config = yaml.safe_load((REPO / "infra/dagster/workspace.yaml").read_text())

    validated = process_workspace_config(config)

    assert validated.success, validated.errors
    [location] = config["load_from"]
    assert location["grpc_server"]["port"] == 4000 and location["grpc_server"]["location_name"] == "etl"
