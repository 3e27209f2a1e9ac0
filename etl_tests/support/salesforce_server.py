"""A local HTTP server on 127.0.0.1 that speaks the part of Salesforce's REST and Bulk API 2.0 an upsert uses:
OAuth token, create job, upload CSV, close, poll, failed results. Salesforce itself cannot run here.

Faults are injected through `SalesforceState`: status codes for the next requests, external IDs whose records
fail, and the credentials it accepts.
"""

import csv
import io
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

TOKEN = "00Dtest!token"


@dataclass
class SalesforceState:
    client_id: str = "etl-app"
    client_secret: str = "app-secret"
    username: str = "etl@example.com"
    password_and_token: str = "pw" + "tok"
    faults: deque = field(default_factory=deque)
    failing_ids: set = field(default_factory=set)
    records: dict = field(default_factory=dict)
    jobs: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_handler(state: SalesforceState, base_url: str):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def reply(self, status: int, body: object = None, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def handle_any(self, method: str) -> None:
            path = urlparse(self.path).path
            with state.lock:
                state.requests.append(f"{method} {path}")
                fault = state.faults.popleft() if state.faults else None
            if fault:
                return self.reply(fault, [{"errorCode": "SERVER_UNAVAILABLE", "message": "injected"}])
            if path == "/services/oauth2/token":
                return self.token(parse_qs(self.body().decode()))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self.reply(401, [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}])
            parts = path.rstrip("/").split("/")
            if parts[-1] == "ingest" and method == "POST":
                return self.create(json.loads(self.body()))
            job = state.jobs.get(parts[parts.index("ingest") + 1]) if "ingest" in parts and len(parts) > parts.index("ingest") + 1 else None
            if job is None:
                return self.reply(404, [{"errorCode": "NOT_FOUND", "message": path}])
            if parts[-1] == "batches" and method == "PUT":
                job["csv"] += self.body().decode()
                return self.reply(201)
            if method == "PATCH":
                job["state"] = json.loads(self.body())["state"]
                return self.reply(200, self.info(job))
            if parts[-1] == "failedResults":
                return self.reply(200, job["failed_csv"].encode(), "text/csv")
            if method == "GET":
                return self.reply(200, self.poll(job))
            return self.reply(405)

        def token(self, form: dict) -> None:
            ok = form.get("client_id") == [state.client_id] and form.get("client_secret") == [state.client_secret]
            if form.get("grant_type") == ["password"]:
                ok = ok and form.get("username") == [state.username] and form.get("password") == [state.password_and_token]
            if not ok:
                return self.reply(400, {"error": "invalid_grant", "error_description": "authentication failure"})
            self.reply(200, {"access_token": TOKEN, "instance_url": base_url, "token_type": "Bearer"})

        def create(self, spec: dict) -> None:
            job = {
                "id": f"750{uuid.uuid4().hex[:15]}",
                "object": spec["object"],
                "externalIdFieldName": spec["externalIdFieldName"],
                "operation": spec["operation"],
                "state": "Open",
                "csv": "",
                "polls": 0,
            }
            state.jobs[job["id"]] = job
            self.reply(200, self.info(job))

        def poll(self, job: dict) -> dict:
            job["polls"] += 1
            if job["state"] == "UploadComplete" and job["polls"] >= 2:
                self.process(job)
            elif job["state"] == "UploadComplete":
                job["state"] = "InProgress"
            elif job["state"] == "InProgress":
                self.process(job)
            return self.info(job)

        def process(self, job: dict) -> None:
            rows = list(csv.DictReader(io.StringIO(job["csv"])))
            key = job["externalIdFieldName"]
            failed = [row for row in rows if row[key] in state.failing_ids]
            for row in rows:
                if row[key] not in state.failing_ids:
                    state.records.setdefault(job["object"], {})[row[key]] = row
            out = io.StringIO()
            if rows:
                writer = csv.DictWriter(out, ["sf__Id", "sf__Error", *rows[0]], lineterminator="\n")
                writer.writeheader()
                writer.writerows({"sf__Id": "", "sf__Error": f"FIELD_CUSTOM_VALIDATION_EXCEPTION:rejected {row[key]}:--", **row} for row in failed)
            job |= {"state": "JobComplete", "processed": len(rows), "failed": len(failed), "failed_csv": out.getvalue()}

        def info(self, job: dict) -> dict:
            return {
                "id": job["id"],
                "object": job["object"],
                "state": job["state"],
                "operation": job["operation"],
                "numberRecordsProcessed": job.get("processed", 0),
                "numberRecordsFailed": job.get("failed", 0),
            }

        def do_POST(self) -> None:
            self.handle_any("POST")

        def do_PUT(self) -> None:
            self.handle_any("PUT")

        def do_PATCH(self) -> None:
            self.handle_any("PATCH")

        def do_GET(self) -> None:
            self.handle_any("GET")

    return Handler


class SalesforceServer:
    def __init__(self, state: SalesforceState):
        self.state = state
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), None)
        self.server.RequestHandlerClass = make_handler(state, self.url)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
