"""Upserts into Salesforce through the Bulk API 2.0 over httpx: sign in, then per batch a job that takes a CSV
upload, is closed, polled until done, and asked for its failed records.

Only what an upsert needs is implemented, so no SDK: simple-salesforce's Bulk 2.0 support hides the per-record
failures behind files it writes to disk, and this module wants them as data to count and sample.
"""

import csv
import io
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import polars as pl

from etl_resources.salesforce.model import SalesforceConnection
from etl_resources.secrets import redact

FAILURE_SAMPLES = 5
DONE = {"JobComplete", "Failed", "Aborted"}


class SalesforceError(RuntimeError):
    def __init__(self, message: str):
        super().__init__(redact(message))


@dataclass
class UpsertResult:
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    jobs: list[str] = field(default_factory=list)
    samples: list[dict[str, str]] = field(default_factory=list)

    @property
    def failed_share(self) -> float:
        return self.failed / self.sent if self.sent else 0.0


class BulkClient:
    """One signed-in session; every request retries 5xx and dropped connections with backoff, never 4xx."""

    def __init__(
        self, connection: SalesforceConnection, attempts: int = 4, backoff_seconds: float = 0.5, poll_seconds: float = 10.0, max_wait_seconds: float = 3600
    ):
        self.connection = connection
        self.attempts, self.backoff_seconds = attempts, backoff_seconds
        self.poll_seconds, self.max_wait_seconds = poll_seconds, max_wait_seconds
        self.http = httpx.Client(timeout=60)
        self.base = ""

    def close(self) -> None:
        self.http.close()

    def sign_in(self) -> None:
        form = {"client_id": self.connection.client_id, "client_secret": self.connection.client_secret}
        if self.connection.username:
            form |= {
                "grant_type": "password",
                "username": self.connection.username,
                "password": (self.connection.password or "") + self.connection.security_token,
            }
        else:
            form |= {"grant_type": "client_credentials"}
        response = self._send("POST", f"{self.connection.login_url}/services/oauth2/token", data=form)
        if response.status_code != 200:
            raise SalesforceError(
                f"Salesforce sign-in at {self.connection.login_url} failed: {response.status_code} {response.text[:200]} "
                "(fix: check connection.username, password and security_token, or client_id and client_secret, and connection.domain: login or test)"
            )
        body = response.json()
        self.http.headers["Authorization"] = f"Bearer {body['access_token']}"
        self.base = f"{body['instance_url'].rstrip('/')}/services/data/{self.connection.api_version}/jobs/ingest"

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.TransportError as err:
                reason = f"{type(err).__name__}: {err}"
            else:
                if response.status_code < 500:
                    return response
                reason = f"HTTP {response.status_code}"
            if attempt == self.attempts:
                raise SalesforceError(f"Salesforce {method} {url.split('?')[0]} failed {attempt} times; last: {reason}")
            time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _ok(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code >= 400:
            raise SalesforceError(f"Salesforce refused to {what}: {response.status_code} {response.text[:300]}")
        return response

    def upsert(self, sobject: str, external_id: str, frame: pl.DataFrame, batch_size: int, log=None) -> UpsertResult:
        result = UpsertResult()
        for offset in range(0, frame.height, batch_size):
            batch = frame.slice(offset, batch_size)
            job = self._ok(
                self._send(
                    "POST",
                    self.base,
                    json={"object": sobject, "externalIdFieldName": external_id, "contentType": "CSV", "operation": "upsert", "lineEnding": "LF"},
                ),
                f"create an upsert job on {sobject}",
            ).json()["id"]
            result.jobs.append(job)
            self._ok(self._send("PUT", f"{self.base}/{job}/batches", content=_csv(batch), headers={"Content-Type": "text/csv"}), f"take job {job}'s rows")
            self._ok(self._send("PATCH", f"{self.base}/{job}", json={"state": "UploadComplete"}), f"close job {job}")
            info = self._wait(job)
            failed = int(info.get("numberRecordsFailed", 0))
            result.sent += batch.height
            result.failed += failed
            result.succeeded += int(info.get("numberRecordsProcessed", batch.height)) - failed
            if failed and len(result.samples) < FAILURE_SAMPLES:
                rows = csv.DictReader(io.StringIO(self._ok(self._send("GET", f"{self.base}/{job}/failedResults/"), f"list job {job}'s failures").text))
                result.samples += [
                    {"external_id": row.get(external_id, ""), "error": row.get("sf__Error", "")}
                    for _, row in zip(range(FAILURE_SAMPLES - len(result.samples)), rows, strict=False)
                ]
            if log:
                log.info(f"Salesforce {sobject}: job {job} done, {result.sent:,} of {frame.height:,} rows sent, {result.failed:,} failed so far")
        return result

    def _wait(self, job: str) -> dict:
        deadline = time.monotonic() + self.max_wait_seconds
        # Small jobs finish in a moment and large ones take minutes: poll soon, then less and less often.
        wait = 0.1
        while True:
            info = self._ok(self._send("GET", f"{self.base}/{job}"), f"report job {job}").json()
            if info.get("state") in DONE:
                if info["state"] != "JobComplete":
                    raise SalesforceError(f"Salesforce job {job} ended {info['state']}: {info.get('errorMessage', '')}")
                return info
            if time.monotonic() > deadline:
                raise SalesforceError(f"Salesforce job {job} not done after {self.max_wait_seconds:.0f}s (state {info.get('state')})")
            time.sleep(wait)
            wait = min(wait * 2, self.poll_seconds)


def _csv(frame: pl.DataFrame) -> bytes:
    # Bulk API 2.0 reads empty fields as "leave as is"; #N/A would blank them, which an upsert of facts never wants.
    return frame.write_csv(line_terminator="\n", null_value="").encode()
