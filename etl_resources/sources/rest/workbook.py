"""A `rest` source as a row of the Excel job list: an API endpoint, its key the secret `<source_name>-api-key`."""

from typing import Any

from etl_resources.sources.base import Column, WorkbookForm
from etl_resources.sources.rest.model import RestSource

AUTH_TYPES = ("none", "api_key", "bearer")
SECRET = "api-key"


def entry(row: dict[str, str]) -> dict[str, Any]:
    get = row.get
    fields: dict[str, Any] = {"kind": "rest", "base_url": get("base_url", ""), "path": get("api_endpoint") or f"/{get('table_name', '')}"}
    key = f"${{{get('source_name', '')}-{SECRET}}}"
    auth = get("auth") or "none"
    if auth == "api_key":
        fields["auth"] = {"type": "api_key", "value": key}
    elif auth == "bearer":
        fields["auth"] = {"type": "bearer", "token": key}
    return fields


def row(source: RestSource) -> dict[str, str]:
    auth = source.auth.type if source.auth else "none"
    return {"source_type": "api", "table_name": source.target.table, "base_url": source.base_url, "api_endpoint": source.path, "auth": auth}


def reference(source: RestSource) -> str | None:
    return source.auth.value if source.auth and source.auth.type == "api_key" else getattr(source.auth, "token", None)


FORM = WorkbookForm(
    source_types=("api",),
    columns=(
        Column("api_endpoint", "APIs: the path under base_url"),
        Column("base_url", "APIs: https://…"),
        Column("auth", "APIs: how the key is sent (X-API-KEY header, or Authorization: Bearer)", AUTH_TYPES),
    ),
    fields={"base_url": "base_url", "path": "api_endpoint", "auth": "auth", "auth.value": "source_name"},
    entry=entry,
    row=row,
    secret=SECRET,
    reference=reference,
)
