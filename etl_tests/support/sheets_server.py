"""A local HTTP server on 127.0.0.1 that answers like Google's token endpoint and the Sheets API v4.

POST /token                                  RFC 7523 JWT bearer grant: the assertion's RS256 signature is checked
                                             with the test key's public key, and its iss, aud, scope and expiry
GET  /v4/spreadsheets/{id}/values/{range}    the range's values as the API sends them: trailing empty cells and
                                             rows left out, an empty cell before a filled one as "", no `values`
                                             key for an empty range; `range` echoes the range with its sheet quoted
GET  /v4/spreadsheets/{id}?fields=...        the sheets' titles

Errors are Google's JSON bodies: {"error": {"code": 400, "message": "Unable to parse range: ...", "status": "INVALID_ARGUMENT"}}.
A spreadsheet is readable by the accounts in its `shared_with`. Cells are Python values; a `Date` cell answers
with its serial number or its formatted text as `dateTimeRenderOption` asks, and FORMATTED_VALUE sends every cell as text.
"""

import base64
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SCOPE = "https://www.googleapis.com/auth/spreadsheets.readonly"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
A1 = re.compile(r"^([A-Z]*)(\d*)(?::([A-Z]*)(\d*))?$")
OPEN = 10**6
SIMPLE_TITLE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Date:
    serial: float
    text: str


@dataclass
class Spreadsheet:
    sheets: dict[str, list[list[Any]]]
    shared_with: set[str]


def service_account_key(token_uri: str, email: str = "etl-reader@etl-tests.iam.gserviceaccount.com") -> tuple[dict, rsa.RSAPublicKey]:
    """A JSON key shaped like the one Google hands out, with a fresh RSA key, and its public half."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    key = {
        "type": "service_account",
        "project_id": "etl-tests",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": "104242424242424242424",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    return key, private.public_key()


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class SheetsState:
    public_key: rsa.RSAPublicKey
    key_id: str
    email: str
    audience: str
    spreadsheets: dict[str, Spreadsheet] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    faults: deque = field(default_factory=deque)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.spreadsheets.clear()
            self.faults.clear()
            self.requests.clear()

    def assertion_problem(self, assertion: str) -> str | None:
        try:
            header, claims, signature = assertion.split(".")
            head, body = json.loads(_b64(header)), json.loads(_b64(claims))
            self.public_key.verify(_b64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            return "Invalid JWT Signature."
        now = time.time()
        if head.get("alg") != "RS256" or head.get("kid") != self.key_id:
            return "Invalid JWT: unknown key id or algorithm."
        if body.get("iss") != self.email or body.get("aud") != self.audience:
            return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."
        if not (body.get("iat", 0) - 300 <= now < body.get("exp", 0) <= body.get("iat", 0) + 3600):
            return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
        if SCOPE not in str(body.get("scope", "")).split():
            return "Invalid OAuth scope or ID token audience provided."
        return None


def quoted_title(title: str) -> str:
    return title if SIMPLE_TITLE.match(title) else "'" + title.replace("'", "''") + "'"


def parse_range(text: str, titles: list[str]) -> tuple[str, str] | None:
    """(sheet title, cells) as the API reads A1 notation, or None where it cannot."""
    if text.startswith("'"):
        end, index = None, 1
        while index < len(text):
            if text[index] == "'":
                if text[index + 1 : index + 2] == "'":
                    index += 2
                    continue
                end = index
                break
            index += 1
        if end is None:
            return None
        title, rest = text[1:end].replace("''", "'"), text[end + 1 :]
        if rest and not rest.startswith("!"):
            return None
        cells = rest[1:]
    elif "!" in text:
        title, _, cells = text.rpartition("!")
    elif text in titles:
        title, cells = text, ""
    else:
        title, cells = titles[0], text
    if title not in titles or not A1.match(cells.upper()):
        return None
    return title, cells.upper()


def render(value: Any, value_render: str, date_render: str) -> Any:
    if isinstance(value, Date):
        if value_render == "FORMATTED_VALUE" or date_render == "FORMATTED_STRING":
            return value.text
        return value.serial
    if value_render == "FORMATTED_VALUE":
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        return "" if value is None else str(value)
    return "" if value is None else value


def values_of(grid: list[list[Any]], cells: str, value_render: str, date_render: str) -> tuple[list[list[Any]], int, int, int]:
    """The rows of `cells` as the API sends them, and where they start (0-based column and row) and end (row)."""
    match = A1.match(cells)
    first_col = _column(match[1]) if match[1] else 0
    first_row = int(match[2]) - 1 if match[2] else 0
    if match[3] is None and cells:  # one cell, one column or one row
        last_col = first_col if match[1] else OPEN
        last_row = first_row if match[2] else OPEN
    else:
        last_col = _column(match[3]) if match[3] else OPEN
        last_row = int(match[4]) - 1 if match[4] else OPEN
    rows = []
    for row in grid[first_row : last_row + 1]:
        row = [render(value, value_render, date_render) for value in row[first_col : last_col + 1]]
        while row and row[-1] == "":
            row.pop()
        rows.append(row)
    while rows and not rows[-1]:
        rows.pop()
    return rows, first_col, first_row, min(last_row, max(len(grid), 1) - 1)


def _column(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _letters(index: int) -> str:
    letters, index = "", index + 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def make_handler(state: SheetsState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def send_json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def google_error(self, code: int, status: str, message: str) -> None:
            self.send_json(code, {"error": {"code": code, "message": message, "status": status}})

        def injected(self) -> bool:
            with state.lock:
                state.requests.append(f"{self.command} {self.path}")
                fault = state.faults.popleft() if state.faults else None
            if fault:
                self.google_error(fault, "UNAVAILABLE", "The service is currently unavailable.")
            return fault is not None

        def do_POST(self) -> None:
            if self.injected():
                return
            form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
            if urllib.parse.urlparse(self.path).path != "/token" or form.get("grant_type") != [GRANT_TYPE]:
                return self.send_json(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."})
            problem = state.assertion_problem(form.get("assertion", [""])[0])
            if problem:
                return self.send_json(400, {"error": "invalid_grant", "error_description": problem})
            token = "ya29." + secrets.token_urlsafe(24)
            with state.lock:
                state.tokens.add(token)
            self.send_json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

        def do_GET(self) -> None:
            if self.injected():
                return
            url = urllib.parse.urlparse(self.path)
            query = {key: values[-1] for key, values in urllib.parse.parse_qs(url.query).items()}
            parts = url.path.split("/")
            if parts[1:3] != ["v4", "spreadsheets"] or len(parts) not in (4, 6):
                return self.google_error(404, "NOT_FOUND", "Method not found.")
            if self.headers.get("Authorization", "").removeprefix("Bearer ") not in state.tokens:
                return self.google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
            spreadsheet = state.spreadsheets.get(urllib.parse.unquote(parts[3]))
            if spreadsheet is None:
                return self.google_error(404, "NOT_FOUND", "Requested entity was not found.")
            if state.email not in spreadsheet.shared_with:
                return self.google_error(403, "PERMISSION_DENIED", "The caller does not have permission")
            if len(parts) == 4:
                return self.send_json(200, {"sheets": [{"properties": {"title": title}} for title in spreadsheet.sheets]})
            asked = urllib.parse.unquote(parts[5])
            parsed = parse_range(asked, list(spreadsheet.sheets))
            if parsed is None:
                return self.google_error(400, "INVALID_ARGUMENT", f"Unable to parse range: {asked}")
            title, cells = parsed
            rows, first_col, first_row, last_row = values_of(
                spreadsheet.sheets[title], cells, query.get("valueRenderOption", "FORMATTED_VALUE"), query.get("dateTimeRenderOption", "SERIAL_NUMBER")
            )
            width = max((len(row) for row in rows), default=1)
            body: dict[str, Any] = {
                "range": f"{quoted_title(title)}!{_letters(first_col)}{first_row + 1}:{_letters(first_col + width - 1)}{last_row + 1}",
                "majorDimension": "ROWS",
            }
            if rows:
                body["values"] = rows
            self.send_json(200, body)

    return Handler


class SheetsServer:
    """The server on a free port of 127.0.0.1, with a service account key whose token_uri points at it."""

    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.key, public_key = service_account_key(f"{self.url}/token")
        self.state = SheetsState(public_key=public_key, key_id=self.key["private_key_id"], email=self.key["client_email"], audience=self.key["token_uri"])
        self.httpd.RequestHandlerClass = make_handler(self.state)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, spreadsheet_id: str, sheets: dict[str, list[list[Any]]], shared: bool = True) -> None:
        self.state.spreadsheets[spreadsheet_id] = Spreadsheet(sheets=sheets, shared_with={self.state.email} if shared else set())

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
