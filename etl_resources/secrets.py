"""Secret references (`${NAME}`) and the resolver that looks them up: environment first, then a local TOML file."""

import os
import re
import tomllib
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

SECRET_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)\}")
DEFAULT_SECRETS_FILE = ".etl/secrets.toml"


class MissingSecretError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def secret_names(template: str) -> list[str]:
    return SECRET_REF.findall(template)


def lookup_secret(name: str, secrets_file: Path) -> str | None:
    if name in os.environ:
        return os.environ[name]
    if secrets_file.is_file():
        with secrets_file.open("rb") as fh:
            value = tomllib.load(fh).get(name)
        if value is not None:
            return str(value)
    return None


def missing_secret_message(name: str, secrets_file: Path) -> str:
    return (
        f"secret '{name}' not found; looked in the environment variable {name} "
        f"and in the secrets file {secrets_file.resolve()}. "
        f"Fix: export {name}=... or add `{name} = \"...\"` to that file."
    )


def substitute(template: str, secrets_file: Path) -> str:
    def replace(match: re.Match[str]) -> str:
        value = lookup_secret(match.group(1), secrets_file)
        if value is None:
            raise MissingSecretError(missing_secret_message(match.group(1), secrets_file))
        return value

    return SECRET_REF.sub(replace, template)


def resolve_url(template: str, secrets_file: Path) -> sa.URL:
    """Fill `${NAME}` references in a SQLAlchemy URL, part by part, so secrets need no URL-escaping."""
    if SECRET_REF.fullmatch(template.strip()):
        return sa.make_url(substitute(template.strip(), secrets_file))
    url = sa.make_url(template)

    def fill(part: str | None) -> str | None:
        return substitute(part, secrets_file) if part else part

    return url.set(
        username=fill(url.username),
        password=fill(url.password),
        host=fill(url.host),
        database=fill(url.database),
        query={key: fill(value) for key, value in url.query.items() if isinstance(value, str)},
    )


class SecretResolver(dg.ConfigurableResource):
    """Resolves `${NAME}` references from the environment, then from a gitignored TOML secrets file."""

    secrets_file: str = DEFAULT_SECRETS_FILE

    def url(self, template: str) -> sa.URL:
        return resolve_url(template, Path(self.secrets_file))
