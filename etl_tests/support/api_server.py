"""A real HTTP server on 127.0.0.1 for the REST tests: every pagination and auth style, and injected faults.

Routes (records are {"id": n, "name": ..., "device": {...}} for ids 1..`record_count`):
    /page?page=&page_size=         {"items": [...], "total": N}
    /offset?offset=&limit=         [...]
    /cursor?cursor=                {"results": [...], "next": "<cursor>"}; also header X-Next-Cursor
    /next?after=                   {"data": [...], "links": {"next": "<absolute url>"}}
    /link?page=                    [...] with an RFC 5988 Link: <...>; rel="next" header
    /datasets/ecom_events          the demo's ecom-events API (page, page_size, start_date, end_date)
    /oauth/token                   OAuth2 client credentials
    /moved                         301 to /page on this server, keeping the query
    /loop                          302 to itself, for ever

Faults: `redirect_to` answers every GET with a 301 to that origin (same path and query); `stuck` makes /page
and /offset ignore their parameters, and /cursor and /next hand out the same cursor and URL on every page; `drip_seconds`
sends each body one byte at a time; `string_ids_after` sends ids above it as strings; `next_origin` puts
/next and /link's next-page URLs on that origin.
"""

import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from etl_assets.demo.events_api import EventsHandler, day_events

PAGE = 10
# A client that does not notice it is going round in circles gets a 410 after this many requests, so that a
# test of the loop guard fails instead of hanging.
STUCK_LIMIT = 50


@dataclass
class ApiState:
    auth: str = "api_key_header"
    secret: str = "s3cret"
    record_count: int = 25
    faults: deque = field(default_factory=deque)
    retry_after: str | None = None
    slow_seconds: float = 0.0
    slow_requests: int = 0
    malformed: bool = False
    token_lifetime: int = 3600
    events_per_day: int = 240
    invalid_share: float = 0.03
    invalid_share_by_day: dict[str, float] = field(default_factory=dict)
    redirect_to: str | None = None
    stuck: bool = False
    drip_seconds: float = 0.0
    string_ids_after: int | None = None
    next_origin: str | None = None
    requests: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    tokens_issued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_handler(state: ApiState):
    class Handler(EventsHandler):
        def authorised(self) -> bool:
            query = self.query()
            header = self.headers.get("Authorization", "")
            match state.auth:
                case "api_key_header":
                    return self.headers.get("X-API-KEY") == state.secret
                case "api_key_query":
                    return query.get("api_key") == state.secret
                case "bearer":
                    return header == f"Bearer {state.secret}"
                case "basic":
                    return header == "Basic " + base64.b64encode(f"etl:{state.secret}".encode()).decode()
                case "none":
                    return True
                case "oauth2":
                    return header.startswith("Bearer token-") and int(header.rsplit("-", 1)[1]) > time.time()
            return False

        def do_POST(self) -> None:
            if urlparse(self.path).path != "/oauth/token":
                return self.send_json(404, {"error": "not found"})
            form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
            if form.get("client_id") != ["etl"] or form.get("client_secret") != [state.secret]:
                return self.send_json(401, {"error": "invalid_client"})
            with state.lock:
                state.tokens_issued += 1
            expires = int(time.time()) + state.token_lifetime
            self.send_json(200, {"access_token": f"token-{expires}", "token_type": "bearer", "expires_in": state.token_lifetime})

        def do_GET(self) -> None:
            with state.lock:
                state.requests.append(self.path)
                state.headers.append(dict(self.headers))
                fault = state.faults.popleft() if state.faults else None
                slow = len(state.requests) <= state.slow_requests
            if slow:
                time.sleep(state.slow_seconds)
            if fault:
                return self.send_json(fault, {"error": "injected"}, {"Retry-After": state.retry_after} if state.retry_after else None)
            if state.redirect_to:
                return self.redirect(301, state.redirect_to + self.path)
            route = urlparse(self.path).path
            if route in ("/moved", "/loop"):
                target = "/page" if route == "/moved" else "/loop"
                return self.redirect(301 if route == "/moved" else 302, target + self.path[len(route) :])
            if state.malformed:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                return self.wfile.write(b"{not json")
            if urlparse(self.path).path == "/datasets/ecom_events":
                self.events_per_day, self.invalid_share, self.api_key = state.events_per_day, state.invalid_share, state.secret
                self.invalid_share_by_day = state.invalid_share_by_day
                return super().do_GET()
            if not self.authorised():
                return self.send_json(401, {"error": "unauthorised"})
            self.paged(urlparse(self.path).path, self.query())

        def redirect(self, status: int, location: str) -> None:
            self.send_response(status)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def send_json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            if not state.drip_seconds:
                return super().send_json(status, body, headers)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                for byte in payload:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(state.drip_seconds)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as it should

        def paged(self, route: str, query: dict[str, str]) -> None:
            records = [{"id": self.record_id(i), "name": f"record {i}", "device": {"os": "ios", "tags": ["a", "b"]}} for i in range(1, state.record_count + 1)]
            if state.stuck:
                if len(state.requests) > STUCK_LIMIT:
                    return self.send_json(410, {"error": "this test server stops answering a stuck client here"})
                query = {} if route in ("/page", "/offset") else query
            base = state.next_origin or f"http://127.0.0.1:{self.server.server_port}"
            match route:
                case "/page":
                    page, size = int(query.get("page", 1)), int(query.get("page_size", PAGE))
                    self.send_json(200, {"items": records[(page - 1) * size : page * size], "total": len(records)})
                case "/offset":
                    offset, limit = int(query.get("offset", 0)), int(query.get("limit", PAGE))
                    self.send_json(200, records[offset : offset + limit])
                case "/cursor":
                    start = int(query.get("cursor", 0))
                    chunk = records[start : start + PAGE]
                    after = "10" if state.stuck else str(start + PAGE) if start + PAGE < len(records) else None
                    self.send_json(200, {"results": chunk, "next": after}, {"X-Next-Cursor": after} if after else None)
                case "/next":
                    start = int(query.get("after", 0))
                    chunk = records[start : start + PAGE]
                    nxt = f"{base}/next?after={10 if state.stuck else start + PAGE}" if start + PAGE < len(records) or state.stuck else None
                    self.send_json(200, {"data": chunk, "links": {"next": nxt}})
                case "/link":
                    page = int(query.get("page", 1))
                    chunk = records[(page - 1) * PAGE : page * PAGE]
                    headers = {"Link": f'<{base}/link?page={page + 1}>; rel="next"'} if page * PAGE < len(records) else None
                    self.send_json(200, chunk, headers)
                case _:
                    self.send_json(404, {"error": "not found"})

        def record_id(self, n: int) -> int | str:
            return str(n) if state.string_ids_after is not None and n > state.string_ids_after else n

    return Handler


class ApiServer:
    def __init__(self, state: ApiState):
        self.state = state
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def invalid_events(day, state: ApiState) -> list[dict]:
    """The events the server serves for `day` that break the demo contract."""
    events = day_events(day, state.events_per_day, state.invalid_share_by_day.get(day.isoformat(), state.invalid_share))
    return [e for e in events if e["price"] < 0 or e["event_type"] == "teleport" or e["user_id"] is None]


def to_json(value) -> str:
    return json.dumps(value, sort_keys=True)
