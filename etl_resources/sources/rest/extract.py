"""Extract a paginated JSON API through httpx as a stream of polars frames, one per page."""

import datetime as dt
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import polars as pl

from etl_resources.secrets import MASK, SECRET_REF, SecretStore, redact
from etl_resources.sources.records import json_path, parse_json, records_frame
from etl_resources.sources.rest.model import ApiKeyAuth, BasicAuth, BearerAuth, ClientCredentialsAuth, RestSource
from etl_resources.sources.rest.retries import backoff, retry_after

RECORD_KEYS = ("data", "events", "results", "items")
MAX_REDIRECTS = 10
DEFAULT_PORTS = {"http": 80, "https": 443}


class RestSourceError(RuntimeError):
    """The API refused, kept failing past the retry budget, or answered with something that is not records.

    The message is cleaned of secrets: it may quote the API's own reply, which can echo a key back.
    """

    def __init__(self, message: str):
        super().__init__(redact(message))


def shown(url: str | httpx.URL, hidden: Iterable[str] = ()) -> str:
    """A URL for messages: the query parameters that carry credentials masked, and any user:password dropped."""
    url = httpx.URL(str(url)).copy_with(userinfo=b"")
    for name in hidden:
        if name in url.params:
            url = url.copy_set_param(name, MASK)
    return redact(str(url).replace("%2A%2A%2A", MASK))


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or DEFAULT_PORTS.get(url.scheme)


def window_values(window: tuple[dt.datetime, dt.datetime]) -> dict[str, str]:
    start, end = window
    return {
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "start_date": start.date().isoformat(),
        "end_date": end.date().isoformat(),
        "last_date": (end - dt.timedelta(days=1)).date().isoformat(),
    }


def select_records(source: RestSource, body: Any, where_from: str) -> list[dict]:
    if source.records_path:
        records = json_path(body, source.records_path)
    elif isinstance(body, list):
        records = body
    else:
        records = next((body[key] for key in RECORD_KEYS if isinstance(body, dict) and isinstance(body.get(key), list)), None)
    if not isinstance(records, list):
        where = f"at `{source.records_path}`" if source.records_path else f"(a bare list, or a list under {', '.join(RECORD_KEYS)})"
        raise RestSourceError(f"source '{source.name}', field 'records_path': no list of records {where} in the response from {where_from}")
    return records


class ClientCredentials(httpx.Auth):
    """OAuth2 client credentials: fetch a token, reuse it until it expires, fetch a new one on a 401."""

    def __init__(self, source: str, token_url: str, client_id: str, client_secret: str, scope: str | None):
        self.form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        if scope:
            self.form["scope"] = scope
        self.source = source
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
        # Only the token's body is read here; data pages stream under the extract's deadline (`Session.fetch`).
        response = yield httpx.Request("POST", self.token_url, data=self.form)
        response.read()
        if response.status_code != 200:
            raise RestSourceError(f"source '{self.source}': token endpoint {shown(self.token_url)} answered {response.status_code}: {response.text[:200]}")
        body = response.json()
        self.token = body["access_token"]
        # Renew a little early so a token never expires between check and use.
        self.expires_at = time.monotonic() + float(body.get("expires_in", 3600)) - 30


@dataclass(frozen=True)
class Credentials:
    """What only the source's own origin may receive: auth headers, headers with secrets, auth query parameters."""

    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    auth: httpx.Auth | None = None


def build_client(source: RestSource, secrets: SecretStore) -> tuple[httpx.Client, Credentials]:
    """The HTTP client with the headers any origin may see, and the credentials, sent per request to the source's origin."""
    fill = secrets.substitute
    plain = {key: value for key, value in source.headers.items() if not SECRET_REF.search(value)}
    headers = {key: fill(value) for key, value in source.headers.items() if key not in plain}
    params: dict[str, str] = {}
    auth: httpx.Auth | None = None
    match source.auth:
        case ApiKeyAuth(location="header"):
            headers[source.auth.name] = fill(source.auth.value)
        case ApiKeyAuth(location="query"):
            params[source.auth.name] = fill(source.auth.value)
        case BearerAuth():
            headers["Authorization"] = f"Bearer {fill(source.auth.token)}"
        case BasicAuth():
            auth = httpx.BasicAuth(fill(source.auth.username), fill(source.auth.password))
        case ClientCredentialsAuth():
            token_url = str(httpx.URL(fill(source.base_url)).join(fill(source.auth.token_url)))
            auth = ClientCredentials(source.name, token_url, fill(source.auth.client_id), fill(source.auth.client_secret), source.auth.scope)
    # Redirects are followed by `Session.fetch`, which decides per hop whether the credentials go along.
    client = httpx.Client(base_url=fill(source.base_url), headers=plain, follow_redirects=False)
    return client, Credentials(headers=headers, params=params, auth=auth)


@dataclass(frozen=True)
class Page:
    url: httpx.URL
    response: httpx.Response
    content: bytes

    def json(self) -> Any:
        return parse_json(self.content)

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


@dataclass
class Session:
    """One day's requests to one source: its origin, its credentials, and a deadline for the whole extract."""

    source: RestSource
    client: httpx.Client
    credentials: Credentials
    log: logging.Logger
    deadline: float = field(init=False)
    home: tuple[str, str, int | None] = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.source.retry.max_total_seconds
        self.home = origin(self.client.base_url)

    def shown(self, url: str | httpx.URL) -> str:
        return shown(url, self.credentials.params)

    def fail(self, url: str | httpx.URL, problem: str) -> RestSourceError:
        return RestSourceError(f"source '{self.source.name}': {self.shown(url)}: {problem}")

    def remaining(self, url: str | httpx.URL) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.fail(
                url,
                f"the extract ran past retry.max_total_seconds={self.source.retry.max_total_seconds:g} "
                "(fix: raise `retry.max_total_seconds` if the day is this slow; or check the API is not stalling)",
            )
        return left

    def request(self, url: str | httpx.URL, params: dict[str, Any]) -> httpx.Request:
        """A GET that carries the credentials only if it goes to the source's own origin."""
        # Merged into the URL here: httpx's `params=` would replace a URL's own query string.
        target = self.client.build_request("GET", url).url.copy_merge_params(params)
        mine = origin(target) == self.home
        if mine:
            target = target.copy_merge_params(self.credentials.params)
        else:
            for name in self.credentials.params:
                target = target.copy_remove_param(name)
        timeout = min(self.source.retry.timeout_seconds, self.remaining(target))
        return self.client.build_request("GET", target, headers=self.credentials.headers if mine else None, timeout=timeout)

    def fetch(self, url: str | httpx.URL, params: dict[str, Any]) -> Page:
        """One GET, following redirects hop by hop, and reading the body in chunks so a slow one meets the deadline."""
        first = request = self.request(url, params)
        for _ in range(MAX_REDIRECTS + 1):
            if origin(request.url) != self.home and self.source.follow_redirects != "any":
                problem = "is on another origin than `base_url`" if request is first else f"redirects to another origin, {self.shown(request.url)}"
                raise self.fail(
                    first.url,
                    f"{problem}; not followed (fix: correct `base_url`, or set `follow_redirects: any` if that origin "
                    "is to be trusted; credentials are never sent there)",
                )
            mine = origin(request.url) == self.home
            response = self.client.send(request, auth=self.credentials.auth if mine else None, stream=True)
            if not response.has_redirect_location:
                return Page(url=request.url, response=response, content=self._read(response, request.url))
            response.close()
            request = self.request(request.url.join(response.headers["Location"]), {})
        raise self.fail(first.url, f"more than {MAX_REDIRECTS} redirects, the last to {self.shown(request.url)} (fix: correct `base_url` and `path`)")

    def _read(self, response: httpx.Response, url: httpx.URL) -> bytes:
        chunks = []
        try:
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                self.remaining(url)
        finally:
            response.close()
        return b"".join(chunks)

    def get(self, url: str | httpx.URL, params: dict[str, Any]) -> Page:
        """GET with bounded retries: connection errors, timeouts, 429 and 5xx; any other 4xx fails at once."""
        retry, source = self.source.retry, self.source
        for attempt in range(1, retry.max_attempts + 1):
            wait: float | None = None
            try:
                page = self.fetch(url, params)
            except httpx.UnsupportedProtocol as err:
                raise RestSourceError(f"source '{source.name}', field 'base_url': {err} (fix: start it with https:// or http://)") from None
            except httpx.TransportError as err:
                reason = f"{type(err).__name__}: {err}"
            except (httpx.HTTPError, httpx.InvalidURL) as err:
                # Not a passing fault (a body that cannot be decoded, a malformed URL): fail at once, named.
                raise self.fail(url, f"{type(err).__name__}: {err} (fix: check `base_url`, `path` and the API's answers)") from None
            else:
                status = page.response.status_code
                if status < 400:
                    return page
                if status != 429 and status < 500:
                    hint = "check the credentials and secrets in `auth`" if status in (401, 403) else "check `base_url`, `path` and `params`"
                    raise self.fail(page.url, f"{status} {page.response.reason_phrase} (fix: {hint}); not retried: {page.text[:200]}")
                reason = f"HTTP {status}"
                wait = retry_after(page.response)
            delay = wait if wait is not None else backoff(attempt, retry.backoff_seconds, retry.max_backoff_seconds)
            if attempt == retry.max_attempts or time.monotonic() + delay > self.deadline:
                raise self.fail(
                    self.client.build_request("GET", url).url.copy_merge_params(params),
                    f"gave up after {attempt} attempt(s); last error: {reason} (fix: check the API is up; `retry` sets the budget)",
                )
            self.log.warning(redact(f"source '{source.name}': {reason} on attempt {attempt}; retrying in {delay:.1f}s"))
            time.sleep(delay)
        raise AssertionError("unreachable")


class Walk:
    """What a paginated walk has seen, to stop an API that hands out the same page, cursor or URL again."""

    def __init__(self, session: Session):
        self.session = session
        self.pages = 0
        self.records = 0
        self.cursors: set[str] = set()
        self.next_urls: set[str] = set()
        self.last_page: list[Any] | None = None

    def add(self, url: httpx.URL, records: list[Any]) -> None:
        self.pages += 1
        self.records += len(records)
        # Compared as parsed, not serialised again: list equality stops at the first record that differs.
        if records and records == self.last_page:
            self.stop(
                url, f"page {self.pages} holds the same records as page {self.pages - 1}", "the API seems to ignore the paging parameters; check `pagination`"
            )
        self.last_page = records

    def next_page(self, url: httpx.URL, cursor: str | None = None, next_url: str | None = None) -> None:
        """Called before asking for another page, with the cursor or next URL it will be asked with."""
        limit = self.session.source.pagination.max_pages
        if self.pages >= limit:
            self.stop(url, f"the day has more than pagination.max_pages={limit} pages", "raise `pagination.max_pages` if it really has this many")
        for value, seen, what in ((cursor, self.cursors, f"cursor {str(cursor)[:80]!r}"), (next_url, self.next_urls, "next URL")):
            if value is None:
                continue
            if value in seen:
                self.stop(url, f"the API handed out the {what} again after page {self.pages}", "check `pagination`: the cursor or next URL must change")
            seen.add(value)

    def stop(self, url: httpx.URL, problem: str, fix: str) -> None:
        raise self.session.fail(url, f"{problem}; stopped so as not to read the same records for ever (fix: {fix})")


def extract_rest(source: RestSource, secrets: SecretStore, window: tuple[dt.datetime, dt.datetime], log: logging.Logger) -> Iterator[pl.DataFrame]:
    """Yield the partition's records page by page; always at least one frame, maybe empty."""
    values = window_values(window)
    paging = source.pagination
    client, credentials = build_client(source, secrets)
    params: dict[str, Any] = {key: value.format(**values) if isinstance(value, str) else value for key, value in source.params.items()}
    params = {key: secrets.substitute(value) if isinstance(value, str) else value for key, value in params.items()}
    url: str | httpx.URL = source.path
    page_number, offset = paging.first_page, 0
    with client:
        session = Session(source, client, credentials, log)
        walk = Walk(session)
        while True:
            if paging.type == "page":
                params |= {paging.page_param: page_number, paging.size_param: paging.page_size}
            elif paging.type == "offset":
                params |= {paging.offset_param: offset, paging.limit_param: paging.page_size}
            page = session.get(url, params)
            try:
                body = page.json()
            except ValueError:
                raise session.fail(page.url, f"the response is not JSON: {page.text[:200]!r}") from None
            records = select_records(source, body, session.shown(page.url))
            walk.add(page.url, records)
            log.debug(f"source '{source.name}' {values['start_date']}: page {walk.pages}, {len(records)} records, {walk.records:,} so far")
            if records or walk.pages == 1:
                yield records_frame(records, source.nested)
            total = json_path(body, paging.total_path) if paging.total_path else None
            if not records or (total is not None and walk.records >= int(total)):
                return
            match paging.type:
                case "none":
                    return
                case "page" | "offset":
                    if len(records) < paging.page_size:
                        return
                    walk.next_page(page.url)
                    page_number, offset = page_number + 1, offset + len(records)
                case "cursor":
                    cursor = json_path(body, paging.cursor_path) if paging.cursor_path else page.response.headers.get(paging.cursor_header)
                    if not cursor:
                        return
                    walk.next_page(page.url, cursor=str(cursor))
                    params[paging.cursor_param] = cursor
                case "next_url" | "link_header":
                    next_url = json_path(body, paging.next_url_path) if paging.type == "next_url" else page.response.links.get("next", {}).get("url")
                    if not next_url:
                        return
                    next_url = page.url.join(next_url)
                    walk.next_page(page.url, next_url=str(next_url))
                    url, params = next_url, {}
            if source.page_delay_seconds:
                time.sleep(source.page_delay_seconds)
