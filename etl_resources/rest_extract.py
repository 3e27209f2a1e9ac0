"""Extract a paginated JSON API through httpx as a stream of polars frames, one per page."""

import datetime as dt
import json
import logging
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import polars as pl

from etl_resources.config import ApiKeyAuth, BasicAuth, BearerAuth, ClientCredentialsAuth, RestSource
from etl_resources.secrets import SecretStore, redact

RECORD_KEYS = ("data", "events", "results", "items")
RECORD_COLUMN = "_record"


class RestSourceError(RuntimeError):
    """The API refused, kept failing past the retry budget, or answered with something that is not records.

    The message is cleaned of secrets: it may quote the API's own reply, which can echo a key back.
    """

    def __init__(self, message: str):
        super().__init__(redact(message))


def shown(url: str | httpx.URL) -> str:
    """A URL for messages: without its query string, which may carry an API key."""
    return str(httpx.URL(str(url)).copy_with(query=None))


def window_values(window: tuple[dt.datetime, dt.datetime]) -> dict[str, str]:
    start, end = window
    return {
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "start_date": start.date().isoformat(),
        "end_date": end.date().isoformat(),
        "last_date": (end - dt.timedelta(days=1)).date().isoformat(),
    }


def json_path(body: Any, path: str) -> Any:
    """`a.b.0.c` walks dict keys and list indexes; None where the path does not exist."""
    for part in path.split("."):
        if isinstance(body, dict):
            body = body.get(part)
        elif isinstance(body, list) and part.isdigit() and int(part) < len(body):
            body = body[int(part)]
        else:
            return None
    return body


def select_records(source: RestSource, body: Any) -> list[dict]:
    if source.records_path:
        records = json_path(body, source.records_path)
    elif isinstance(body, list):
        records = body
    else:
        records = next((body[key] for key in RECORD_KEYS if isinstance(body, dict) and isinstance(body.get(key), list)), None)
    if not isinstance(records, list):
        where = f"at `{source.records_path}`" if source.records_path else f"(a bare list, or a list under {', '.join(RECORD_KEYS)})"
        raise RestSourceError(f"source '{source.name}', field 'records_path': no list of records {where} in the response")
    return records


def _flatten(record: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}_"))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list) else value
    return flat


def records_frame(source: RestSource, records: list[Any]) -> pl.DataFrame:
    """Nested values become JSON text (`nested: json`) or `parent_child` columns (`nested: flatten`).

    Each row keeps its original record as JSON in `_record`, for the rejects.
    """
    rows = []
    for record in records:
        if not isinstance(record, dict):
            record = {"value": record}
        row = _flatten(record) if source.nested == "flatten" else {
            key: json.dumps(value) if isinstance(value, (dict, list)) else value for key, value in record.items()
        }
        row[RECORD_COLUMN] = json.dumps(record, default=str)
        rows.append(row)
    return pl.from_dicts(rows, infer_schema_length=None, strict=False) if rows else pl.DataFrame({RECORD_COLUMN: []}, schema={RECORD_COLUMN: pl.String})


class ClientCredentials(httpx.Auth):
    """OAuth2 client credentials: fetch a token, reuse it until it expires, fetch a new one on a 401."""

    requires_response_body = True

    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str | None):
        self.form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        if scope:
            self.form["scope"] = scope
        self.token_url = token_url
        self.token: str | None = None
        self.expires_at = 0.0

    def auth_flow(self, request: httpx.Request):
        if self.token is None or time.monotonic() >= self.expires_at:
            yield from self._refresh()
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:
            yield from self._refresh()
            request.headers["Authorization"] = f"Bearer {self.token}"
            yield request

    def _refresh(self):
        response = yield httpx.Request("POST", self.token_url, data=self.form)
        if response.status_code != 200:
            raise RestSourceError(f"token endpoint {self.token_url} answered {response.status_code}: {response.text[:200]}")
        body = response.json()
        self.token = body["access_token"]
        # Renew a little early so a token never expires between check and use.
        self.expires_at = time.monotonic() + float(body.get("expires_in", 3600)) - 30


def build_client(source: RestSource, secrets: SecretStore) -> tuple[httpx.Client, dict[str, str]]:
    """The HTTP client with headers and auth, and any query parameters the auth adds."""
    fill = secrets.substitute

    headers = {key: fill(value) for key, value in source.headers.items()}
    auth_params: dict[str, str] = {}
    auth: httpx.Auth | None = None
    match source.auth:
        case ApiKeyAuth(location="header"):
            headers[source.auth.name] = fill(source.auth.value)
        case ApiKeyAuth(location="query"):
            auth_params[source.auth.name] = fill(source.auth.value)
        case BearerAuth():
            headers["Authorization"] = f"Bearer {fill(source.auth.token)}"
        case BasicAuth():
            auth = httpx.BasicAuth(fill(source.auth.username), fill(source.auth.password))
        case ClientCredentialsAuth():
            token_url = str(httpx.URL(fill(source.base_url)).join(fill(source.auth.token_url)))
            auth = ClientCredentials(token_url, fill(source.auth.client_id), fill(source.auth.client_secret), source.auth.scope)
    client = httpx.Client(base_url=fill(source.base_url), headers=headers, auth=auth, timeout=source.retry.timeout_seconds, follow_redirects=True)
    return client, auth_params


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def get_page(client: httpx.Client, source: RestSource, url: str, params: dict[str, Any], log: logging.Logger) -> httpx.Response:
    """GET with bounded retries: connection errors, timeouts, 429 and 5xx; any other 4xx fails at once."""
    retry = source.retry
    started = time.monotonic()
    for attempt in range(1, retry.max_attempts + 1):
        wait: float | None = None
        try:
            # params=None, not {}: httpx replaces a URL's own query string with an empty mapping.
            response = client.get(url, params=params or None)
        except httpx.UnsupportedProtocol as err:
            raise RestSourceError(f"source '{source.name}', field 'base_url': {err} (fix: start it with https:// or http://)") from None
        except httpx.TransportError as err:
            reason = f"{type(err).__name__}: {err}"
        else:
            if response.status_code < 400:
                return response
            if response.status_code != 429 and response.status_code < 500:
                hint = "check the credentials and secrets in `auth`" if response.status_code in (401, 403) else "check `base_url`, `path` and `params`"
                raise RestSourceError(
                    f"source '{source.name}': {response.status_code} {response.reason_phrase} from {shown(response.request.url)} "
                    f"(fix: {hint}); not retried: {response.text[:200]}"
                )
            reason = f"HTTP {response.status_code}"
            wait = _retry_after(response)
        backoff = min(retry.max_backoff_seconds, retry.backoff_seconds * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        delay = wait if wait is not None else backoff
        elapsed = time.monotonic() - started
        if attempt == retry.max_attempts or elapsed + delay > retry.max_total_seconds:
            raise RestSourceError(
                f"source '{source.name}': gave up on {shown(url)} after {attempt} attempt(s) in {elapsed:.1f}s; last error: {reason} "
                "(fix: check the API is up; `retry` sets the budget)"
            )
        log.warning(redact(f"source '{source.name}': {reason} on attempt {attempt}; retrying in {delay:.1f}s"))
        time.sleep(delay)
    raise AssertionError("unreachable")


def extract_rest(source: RestSource, secrets: SecretStore, window: tuple[dt.datetime, dt.datetime], log: logging.Logger) -> Iterator[pl.DataFrame]:
    """Yield the partition's records page by page; always at least one frame, maybe empty."""
    values = window_values(window)
    paging = source.pagination
    client, auth_params = build_client(source, secrets)
    params: dict[str, Any] = {key: value.format(**values) if isinstance(value, str) else value for key, value in source.params.items()}
    params = {key: secrets.substitute(value) if isinstance(value, str) else value for key, value in params.items()} | auth_params
    url = source.path
    page, offset, seen, pages = paging.first_page, 0, 0, 0
    with client:
        while True:
            if paging.type == "page":
                params |= {paging.page_param: page, paging.size_param: paging.page_size}
            elif paging.type == "offset":
                params |= {paging.offset_param: offset, paging.limit_param: paging.page_size}
            response = get_page(client, source, url, params, log)
            try:
                body = response.json()
            except ValueError:
                raise RestSourceError(f"source '{source.name}': the response from {shown(response.url)} is not JSON: {response.text[:200]!r}") from None
            records = select_records(source, body)
            pages += 1
            seen += len(records)
            log.debug(f"source '{source.name}' {values['start_date']}: page {pages}, {len(records)} records, {seen:,} so far")
            if records or pages == 1:
                yield records_frame(source, records)
            total = json_path(body, paging.total_path) if paging.total_path else None
            if not records or (total is not None and seen >= int(total)):
                return
            match paging.type:
                case "none":
                    return
                case "page" | "offset":
                    if len(records) < paging.page_size:
                        return
                    page, offset = page + 1, offset + len(records)
                case "cursor":
                    cursor = json_path(body, paging.cursor_path) if paging.cursor_path else response.headers.get(paging.cursor_header)
                    if not cursor:
                        return
                    params[paging.cursor_param] = cursor
                case "next_url" | "link_header":
                    next_url = json_path(body, paging.next_url_path) if paging.type == "next_url" else response.links.get("next", {}).get("url")
                    if not next_url:
                        return
                    url, params = str(httpx.URL(next_url).copy_merge_params(auth_params)), {}
            if source.page_delay_seconds:
                time.sleep(source.page_delay_seconds)
