"""Secret references (`${NAME}`) and where they are looked up: Azure Key Vault when a vault is configured,
then environment variables, then a gitignored local TOML file.

Names follow `<source>-<key>` (e.g. `${shop-password}`) or any `${NAME}`. Key Vault allows letters, digits
and dashes, so a name's underscores become dashes there; the environment is asked for the name as written
and as an upper-case variable with dashes as underscores (`SHOP_PASSWORD`).
"""

import os
import re
import tomllib
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import dagster as dg
import sqlalchemy as sa
from pydantic import PrivateAttr

SECRET_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)\}")
DEFAULT_SECRETS_FILE = ".etl/secrets.toml"
KEY_VAULT_URL_ENV = "AZURE_KEYVAULT_URL"
MASK = "***"
# Every value this process has resolved, so that text from elsewhere (a driver's error, an API's reply) can
# be cleaned of them before it reaches a log, an exception, the audit table or the lake.
_resolved: set[str] = set()


def redact(text: str) -> str:
    """`text` with every resolved secret, plain or URL-encoded, replaced by ***."""
    for value in sorted(_resolved, key=len, reverse=True):
        for form in {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}:
            text = text.replace(form, MASK)
    return text


NEWLINE = b"\n"


def _where(err: Exception) -> str:
    """The position of a TOML or decoding error, without the text around it."""
    if isinstance(err, UnicodeDecodeError):
        return f"line {err.object[: err.start].count(NEWLINE) + 1}"
    return str(err).rpartition("(")[2].rstrip(")") or "somewhere"


class MissingSecretError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class SecretClient(Protocol):
    """The part of azure-keyvault-secrets' `SecretClient` the lookup uses."""

    def get_secret(self, name: str): ...


def key_vault_client(vault_url: str) -> SecretClient:
    """A Key Vault client on `DefaultAzureCredential`: Managed Identity in Azure, `az login` on a laptop."""
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    return SecretClient(vault_url=vault_url, credential=DefaultAzureCredential())


def secret_names(template: str) -> list[str]:
    return SECRET_REF.findall(template)


def vault_name(name: str) -> str:
    return name.replace("_", "-")


def env_names(name: str) -> list[str]:
    upper = name.upper().replace("-", "_")
    return [name] if upper == name else [name, upper]


class SecretStore:
    """One lookup order for every connector; each name is fetched once and remembered."""

    def __init__(self, secrets_file: Path, vault_url: str | None = None, client_factory: Callable[[str], SecretClient] | None = None):
        self.secrets_file = secrets_file
        self.vault_url = vault_url or None
        self._client_factory = client_factory
        self._client: SecretClient | None = None
        self._cache: dict[str, str | None] = {}
        self._file: dict[str, object] | None = None

    def lookup(self, name: str) -> str | None:
        if name not in self._cache:
            value = None
            for place in (self._from_vault, self._from_env, self._from_file):
                value = place(name)
                if value is not None:
                    break
            self._cache[name] = value
            if value and len(value) >= 4:
                _resolved.add(value)
        return self._cache[name]

    def require(self, name: str) -> str:
        value = self.lookup(name)
        if value is None:
            raise MissingSecretError(self.missing_message(name))
        return value

    def _from_vault(self, name: str) -> str | None:
        if not self.vault_url:
            return None
        from azure.core.exceptions import ResourceNotFoundError

        if self._client is None:
            self._client = (self._client_factory or key_vault_client)(self.vault_url)
        try:
            return self._client.get_secret(vault_name(name)).value
        except ResourceNotFoundError:
            return None
        except Exception as err:
            # Not found falls through to the next place; a vault that cannot be read must not, or a stale
            # local value would be used without anyone noticing.
            raise MissingSecretError(
                f"secret '{name}': Key Vault {self.vault_url} could not be read ({type(err).__name__}: {err}). "
                f"Fix: sign in (`az login`) or grant this identity 'Key Vault Secrets User', or unset {KEY_VAULT_URL_ENV}."
            ) from None

    def _from_env(self, name: str) -> str | None:
        return next((os.environ[env] for env in env_names(name) if env in os.environ), None)

    def _from_file(self, name: str) -> str | None:
        if self._file is None:
            # Read again on every lookup while broken, so each secret of the file reports why.
            file: dict[str, object] = {}
            if self.secrets_file.is_file():
                with self.secrets_file.open("rb") as fh:
                    try:
                        file = tomllib.load(fh)
                    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
                        # Not the values: the message must not show a secret from the line at fault.
                        raise MissingSecretError(
                            f"secrets file {self.secrets_file.resolve()} is not valid UTF-8 TOML ({type(err).__name__}, {_where(err)}). "
                            'Fix: write one `NAME = "value"` a line, the value in double quotes, saved as UTF-8.'
                        ) from None
            self._file = file
        value = self._file.get(name)
        return None if value is None else str(value)

    def places(self, name: str) -> list[str]:
        places = [f"Key Vault {self.vault_url} (secret {vault_name(name)})"] if self.vault_url else []
        places.append(" and ".join(f"environment variable {env}" for env in env_names(name)))
        places.append(f"secrets file {self.secrets_file.resolve()}")
        return places

    def missing_message(self, name: str) -> str:
        fixes = [f"export {env_names(name)[-1]}=...", f'add `{name} = "..."` to that file']
        if self.vault_url:
            fixes.insert(0, f"`az keyvault secret set --vault-name <vault> --name {vault_name(name)} --value ...`")
        return f"secret '{name}' not found; looked in {'; '.join(self.places(name))}. Fix: {', or '.join(fixes)}."

    def substitute(self, template: str) -> str:
        return SECRET_REF.sub(lambda match: self.require(match.group(1)), template)

    def url(self, template: str) -> sa.URL:
        """Fill `${NAME}` references in a SQLAlchemy URL, part by part, so secrets need no URL-escaping."""
        if SECRET_REF.fullmatch(template.strip()):
            return sa.make_url(self.substitute(template.strip()))
        url = sa.make_url(template)

        def fill(part: str | None) -> str | None:
            return self.substitute(part) if part else part

        return url.set(
            username=fill(url.username),
            password=fill(url.password),
            host=fill(url.host),
            database=fill(url.database),
            query={key: fill(value) for key, value in url.query.items() if isinstance(value, str)},
        )


class SecretResolver(dg.ConfigurableResource):
    """Resolves `${NAME}` references: Key Vault (when `key_vault_url` is set), then the environment, then a TOML file.

    A resource lives for one run, so each secret is fetched at most once a run.
    """

    secrets_file: str = DEFAULT_SECRETS_FILE
    key_vault_url: str | None = None
    _store: SecretStore | None = PrivateAttr(default=None)

    def store(self) -> SecretStore:
        if self._store is None:
            self._store = SecretStore(Path(self.secrets_file), self.key_vault_url)
        return self._store

    def url(self, template: str) -> sa.URL:
        return self.store().url(template)

    def substitute(self, template: str) -> str:
        return self.store().substitute(template)
