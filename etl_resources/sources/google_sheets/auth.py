"""The service account's key, from the secrets resolver, and the signed assertion Google exchanges for a token."""

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.auth import jwt
from google.oauth2 import service_account

from etl_resources.secrets import SECRET_REF, SecretStore, redact
from etl_resources.sources.google_sheets.model import GoogleSheetsSource

SCOPE = "https://www.googleapis.com/auth/spreadsheets.readonly"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
KEY_FIELDS = ("client_email", "private_key", "token_uri")
KEY_FIX = "store the whole JSON key file Google gave you (IAM > Service accounts > Keys > Add key > JSON), or that file's path"


class GoogleSheetsError(RuntimeError):
    """The key, the token endpoint or the Sheets API refused; cleaned of secrets, as it may quote Google's reply."""

    def __init__(self, message: str):
        super().__init__(redact(message))


@dataclass(frozen=True)
class ServiceAccount:
    info: dict[str, Any]
    credentials: service_account.Credentials

    @property
    def email(self) -> str:
        return self.info["client_email"]

    def assertion(self, lifetime: int = 3600) -> str:
        """A JWT signed with the key that asks for read-only access to spreadsheets (RFC 7523)."""
        now = int(time.time())
        claims = {"iss": self.email, "scope": SCOPE, "aud": self.info["token_uri"], "iat": now, "exp": now + lifetime}
        return jwt.encode(self.credentials.signer, claims).decode()


def key_problem(source: GoogleSheetsSource, secret: str, problem: str) -> GoogleSheetsError:
    return GoogleSheetsError(f"source '{source.name}', field 'service_account': secret '{secret}' {problem} (fix: {KEY_FIX})")


def key_text(source: GoogleSheetsSource, secrets: SecretStore, secret: str) -> str:
    value = secrets.require(secret).strip()
    if value.startswith("{"):
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise key_problem(source, secret, "is neither a JSON key (it does not start with '{') nor the path of a key file that exists")
    return path.read_text(encoding="utf-8")


def load_key(source: GoogleSheetsSource, secrets: SecretStore) -> ServiceAccount:
    """The key named by `service_account`, checked before anything is sent anywhere."""
    secret = SECRET_REF.fullmatch(source.service_account).group(1)
    text = key_text(source, secrets, secret)
    try:
        info = json.loads(text)
    except ValueError as err:
        raise key_problem(source, secret, f"is not JSON (line {err.lineno}, column {err.colno})") from None
    if not isinstance(info, dict) or info.get("type", "service_account") != "service_account":
        kind = info.get("type") if isinstance(info, dict) else type(info).__name__
        raise key_problem(source, secret, f"is not a service account key (its type is {kind!r})")
    missing = [name for name in KEY_FIELDS if not isinstance(info.get(name), str) or not info[name]]
    if missing:
        raise key_problem(source, secret, f"lacks {', '.join(missing)}")
    try:
        credentials = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
    except (ValueError, TypeError, IndexError) as err:
        raise key_problem(source, secret, f"holds a private_key that cannot be read ({type(err).__name__})") from None
    return ServiceAccount(info=info, credentials=credentials)
