"""The Sheets API v4 through httpx: the token exchange, a range's values, the sheets' titles; bounded retries."""

import logging
import time
import urllib.parse
from typing import Any

import httpx

from etl_resources.sources.google_sheets.auth import GRANT_TYPE, GoogleSheetsError, ServiceAccount
from etl_resources.sources.google_sheets.model import GoogleSheetsSource
from etl_resources.sources.rest.retries import backoff, retry_after

RETRIED = (429, 500, 502, 503, 504)
MAX_WAIT_SECONDS = 60.0


def google_message(response: httpx.Response) -> str:
    """Google's own words: `error.message` of the API, `error_description` of the token endpoint, else the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return f"{error.get('status', response.status_code)}: {error.get('message', '')}"
    if isinstance(error, str):
        return f"{error}: {body.get('error_description', '')}".rstrip(": ")
    return response.text[:300]


class SheetsClient:
    """One day's requests for one source, with the token of its service account."""

    def __init__(self, source: GoogleSheetsSource, account: ServiceAccount, log: logging.Logger):
        self.source = source
        self.account = account
        self.log = log
        self.http = httpx.Client(timeout=httpx.Timeout(source.timeout_seconds), follow_redirects=False)
        self.token: str | None = None

    def __enter__(self) -> "SheetsClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def fail(self, field: str, problem: str) -> GoogleSheetsError:
        return GoogleSheetsError(f"source '{self.source.name}', field '{field}': {problem}")

    def send(self, field: str, request: httpx.Request) -> httpx.Response:
        """The response, after retrying connection errors, timeouts, 429 and 5xx; a host that never answers fails."""
        for attempt in range(1, self.source.max_attempts + 1):
            wait = None
            try:
                response = self.http.send(request)
            except httpx.TransportError as err:
                reason = f"{type(err).__name__}: {err}"
            else:
                if response.status_code not in RETRIED:
                    return response
                reason = f"HTTP {response.status_code} {google_message(response)}"
                wait = retry_after(response, MAX_WAIT_SECONDS)
            if attempt == self.source.max_attempts:
                break
            delay = wait if wait is not None else backoff(attempt, self.source.backoff_seconds)
            self.log.warning(f"source '{self.source.name}': {request.url.copy_with(query=None)}: {reason}; retrying in {delay:.1f}s")
            time.sleep(delay)
        raise self.fail(
            field,
            f"{request.method} {request.url.copy_with(query=None)} gave up after {self.source.max_attempts} attempt(s); last error: {reason} "
            f"(fix: check that `{field}` is right and reachable from here; `timeout_seconds` bounds each attempt, `max_attempts` their number)",
        )

    def sign_in(self) -> None:
        token_url = self.source.token_url or self.account.info["token_uri"]
        field = "token_url" if self.source.token_url else "service_account"
        form = {"grant_type": GRANT_TYPE, "assertion": self.account.assertion()}
        response = self.send(field, self.http.build_request("POST", token_url, data=form))
        if response.status_code != 200:
            raise self.fail(
                "service_account",
                f"the token endpoint {token_url} refused the key of {self.account.email} ({response.status_code} {google_message(response)}) "
                "(fix: the key may be deleted or disabled; create a new JSON key for that service account and store it in the secret)",
            )
        try:
            self.token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise self.fail(field, f"the token endpoint {token_url} answered 200 without an access_token: {response.text[:200]!r}") from None

    def get(self, path: str, params: dict[str, str]) -> httpx.Response:
        if self.token is None:
            self.sign_in()
        url = f"{self.source.api_url.rstrip('/')}/v4/spreadsheets/{urllib.parse.quote(self.source.spreadsheet_id, safe='')}{path}"
        request = self.http.build_request("GET", url, params=params, headers={"Authorization": f"Bearer {self.token}"})
        return self.send("api_url", request)

    def values(self) -> dict[str, Any]:
        source = self.source
        params = {"majorDimension": "ROWS", "valueRenderOption": source.value_render, "dateTimeRenderOption": source.date_time_render}
        response = self.get(f"/values/{urllib.parse.quote(source.range, safe='')}", params)
        if response.status_code != 200:
            raise self.refusal(response)
        try:
            return response.json()
        except ValueError:
            raise self.fail("api_url", f"{response.url.copy_with(query=None)} answered 200 with a body that is not JSON: {response.text[:200]!r}") from None

    def titles(self) -> list[str]:
        response = self.get("", {"fields": "sheets.properties.title"})
        if response.status_code != 200:
            raise self.refusal(response)
        return [sheet["properties"]["title"] for sheet in response.json().get("sheets", [])]

    def refusal(self, response: httpx.Response) -> GoogleSheetsError:
        source, said, email = self.source, google_message(response), self.account.email
        sheet = f"spreadsheet {source.spreadsheet_id!r}"
        match response.status_code:
            case 400 if "Unable to parse range" in said:
                titles = ", ".join(repr(title) for title in self.titles())
                return self.fail(
                    "range",
                    f"{sheet} has no range {source.range!r} ({said}); its sheets: {titles} "
                    "(fix: name one of them, in single quotes when it has spaces or other signs, a quote inside doubled: 'Bob''s'!A1:Z)",
                )
            case 401:
                return self.fail("service_account", f"the Sheets API refused the token of {email} ({said}) (fix: check the key in the secret is current)")
            case 403:
                return self.fail(
                    "service_account",
                    f"{email} may not read {sheet} ({said}) (fix: share the spreadsheet with {email} as a Viewer; "
                    f"if the message says so, enable the Google Sheets API in project {self.account.info.get('project_id', '?')!r})",
                )
            case 404:
                return self.fail(
                    "spreadsheet_id",
                    f"{sheet} not found at {source.api_url} ({said}) (fix: copy the id from the sheet's address, "
                    "https://docs.google.com/spreadsheets/d/<spreadsheet_id>/edit)",
                )
        return self.fail("range", f"the Sheets API answered {response.status_code} for {sheet}, range {source.range!r}: {said}")
