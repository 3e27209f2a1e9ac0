"""Where secrets come from. Key Vault cannot run here: a stub `SecretClient` stands in for it (no network);
environment variables and the secrets file are real."""

from types import SimpleNamespace

import pytest
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError

from etl_resources import secrets as secrets_module
from etl_resources.config.sources_file import SourcesConfigError
from etl_resources.secrets import MissingSecretError, SecretStore, key_vault_client
from etl_tests.checks.test_quality_gate import DAY, EVENTS, events_yaml

VAULT = "https://etl-test.vault.azure.net/"


class StubVault:
    """Answers like azure-keyvault-secrets' SecretClient: a value, or ResourceNotFoundError."""

    def __init__(self, values: dict[str, str], error: Exception | None = None):
        self.values, self.error, self.asked = values, error, []

    def get_secret(self, name: str) -> SimpleNamespace:
        self.asked.append(name)
        if self.error:
            raise self.error
        if name not in self.values:
            raise ResourceNotFoundError(f"A secret with (name/id) {name} was not found in this key vault.")
        return SimpleNamespace(value=self.values[name])


@pytest.fixture
def secrets_file(workdir):
    path = workdir / ".etl/secrets.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('shop-password = "from-file"\nonly-in-file = "file-value"\n')
    return path


def test_the_real_client_is_built_without_touching_the_network():
    from azure.keyvault.secrets import SecretClient

    client = key_vault_client(VAULT)
    assert isinstance(client, SecretClient) and client.vault_url == VAULT.rstrip("/")


def test_key_vault_then_environment_then_file(secrets_file, monkeypatch):
    vault = StubVault({"shop-password": "from-vault"})
    monkeypatch.setenv("SHOP_PASSWORD", "from-env")
    monkeypatch.setenv("ONLY_IN_ENV", "env-value")
    store = SecretStore(secrets_file, VAULT, client_factory=lambda url: vault)

    assert store.require("shop-password") == "from-vault"
    assert store.require("ONLY_IN_ENV") == "env-value"
    assert store.require("only-in-file") == "file-value"
    assert vault.asked == ["shop-password", "ONLY-IN-ENV", "only-in-file"]


def test_without_a_vault_the_environment_beats_the_file_and_dashes_become_underscores(secrets_file, monkeypatch):
    store = SecretStore(secrets_file)
    assert store.require("shop-password") == "from-file"

    monkeypatch.setenv("SHOP_PASSWORD", "from-env")
    assert SecretStore(secrets_file).require("shop-password") == "from-env"


def test_each_secret_is_fetched_once(secrets_file):
    vault = StubVault({"shop-password": "from-vault"})
    store = SecretStore(secrets_file, VAULT, client_factory=lambda url: vault)

    values = {store.substitute("postgresql://etl:${shop-password}@db/shop") for _ in range(3)}

    assert values == {"postgresql://etl:from-vault@db/shop"} and vault.asked == ["shop-password"]


def test_a_missing_secret_names_every_place_searched(secrets_file):
    store = SecretStore(secrets_file, VAULT, client_factory=lambda url: StubVault({}))

    with pytest.raises(MissingSecretError) as caught:
        store.require("warehouse-password")

    message = str(caught.value)
    for place in (
        f"Key Vault {VAULT} (secret warehouse-password)",
        "environment variable warehouse-password",
        "environment variable WAREHOUSE_PASSWORD",
        f"secrets file {secrets_file.resolve()}",
        "az keyvault secret set",
    ):
        assert place in message


def test_a_vault_that_cannot_be_read_is_an_error_not_a_fallback(secrets_file):
    denied = StubVault({}, error=ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token"))
    store = SecretStore(secrets_file, VAULT, client_factory=lambda url: denied)

    with pytest.raises(MissingSecretError, match="could not be read .*Key Vault Secrets User"):
        store.require("shop-password")


def test_a_run_takes_its_api_key_from_key_vault(platform, api, monkeypatch):
    """The whole path: definitions load with AZURE_KEYVAULT_URL set, and the REST source's key comes from the vault."""
    api.state.secret = "vault-only-key"
    monkeypatch.delenv("ECOM_API_KEY", raising=False)
    monkeypatch.setenv("AZURE_KEYVAULT_URL", VAULT)
    vault = StubVault({"ECOM-API-KEY": "vault-only-key"})
    monkeypatch.setattr(secrets_module, "key_vault_client", lambda url: vault)
    defs = platform.configure(events_yaml(api.url))

    result = platform.materialize(defs, DAY, selection=EVENTS[:2])

    assert result.success
    assert platform.manifest(defs, "raw/ecom_events", DAY)["rows"] > 0


def test_a_secret_missing_everywhere_fails_when_the_definitions_load(platform, monkeypatch):
    monkeypatch.delenv("ECOM_API_KEY", raising=False)
    monkeypatch.setenv("AZURE_KEYVAULT_URL", VAULT)
    monkeypatch.setattr(secrets_module, "key_vault_client", lambda url: StubVault({}))

    with pytest.raises(SourcesConfigError) as caught:
        platform.configure(events_yaml("http://127.0.0.1:9"))

    assert "source 'ecom_events' (sources[0]), field 'auth.value': secret 'ECOM_API_KEY' not found; looked in Key Vault" in str(caught.value)
