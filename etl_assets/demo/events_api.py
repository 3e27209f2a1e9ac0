"""The demo's ecom-events API on 127.0.0.1: paged JSON events per day behind an X-API-KEY header.

GET /datasets/ecom_events?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD&page=1&page_size=100
    → {"data": [event, ...], "meta": {"page": 1, "page_size": 100, "total": 240}}
Events are generated from the day, so every run sees the same ones; about `invalid_share` of them break
the demo contract (a negative price, an unknown event type, a missing user), so rejects show in the UI.

Run standalone: python -m etl_assets.demo.events_api [PORT [BAD_DAY]]; BAD_DAY (YYYY-MM-DD) breaks 10 % of its rows.
"""

import datetime as dt
import json
import random
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

DEMO_API_PORT = 8765
DEMO_API_KEY = "demo-key"
EVENT_TYPES = ("view", "cart", "remove_from_cart", "purchase")
BRANDS = ("acme", "globex", "initech", None)


def day_events(day: dt.date, count: int = 240, invalid_share: float = 0.03) -> list[dict]:
    """The events of one day; the first `invalid_share` of them (shuffled into place) are broken."""
    rng = random.Random(day.toordinal())
    broken = round(count * invalid_share)
    events = []
    for i in range(count):
        at = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(seconds=rng.randint(0, 86_399))
        event = {
            "event_time": at.isoformat().replace("+00:00", "Z"),
            "event_type": rng.choice(EVENT_TYPES).upper() if i % 7 == 0 else rng.choice(EVENT_TYPES),
            "product_id": rng.randint(1_000_000, 9_999_999),
            "category_code": rng.choice(["electronics.phone", "appliances.kitchen", None]),
            "brand": rng.choice(BRANDS),
            "price": round(rng.uniform(1, 900), 2),
            "user_id": rng.randint(500_000_000, 600_000_000),
            "user_session": f"s-{rng.getrandbits(48):012x}",
            "device": {"os": rng.choice(["ios", "android", "web"]), "app_version": f"3.{rng.randint(0, 9)}"},
        }
        if i < broken:
            fault = i % 3
            if fault == 0:
                event["price"] = -event["price"]
            elif fault == 1:
                event["event_type"] = "teleport"
            else:
                event["user_id"] = None
        events.append(event)
    rng.shuffle(events)
    return events


class EventsHandler(BaseHTTPRequestHandler):
    api_key = DEMO_API_KEY
    events_per_day = 240
    invalid_share = 0.03
    # Days ("YYYY-MM-DD") that break the contract more or less often than `invalid_share`.
    invalid_share_by_day: dict[str, float] = {}

    def log_message(self, format: str, *args) -> None:
        pass

    def send_json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlparse(self.path).query).items()}

    def events_between(self, query: dict[str, str]) -> list[dict]:
        start = dt.date.fromisoformat(query["start_date"])
        end = dt.date.fromisoformat(query["end_date"])
        days = [start + dt.timedelta(days=n) for n in range((end - start).days)]
        return [event for day in days for event in day_events(day, self.events_per_day, self.invalid_share_by_day.get(day.isoformat(), self.invalid_share))]

    def do_GET(self) -> None:
        if urlparse(self.path).path != "/datasets/ecom_events":
            return self.send_json(404, {"error": "not found"})
        if self.headers.get("X-API-KEY") != self.api_key:
            return self.send_json(401, {"error": "missing or wrong X-API-KEY"})
        query = self.query()
        try:
            events = self.events_between(query)
            page, size = int(query.get("page", 1)), min(int(query.get("page_size", 100)), 1000)
        except (KeyError, ValueError) as err:
            return self.send_json(400, {"error": f"bad query: {err}"})
        chunk = events[(page - 1) * size : page * size]
        self.send_json(200, {"data": chunk, "meta": {"page": page, "page_size": size, "total": len(events)}})


def serve(port: int, handler: type[BaseHTTPRequestHandler] = EventsHandler) -> ThreadingHTTPServer:
    """Start the API in a daemon thread; `server.shutdown()` stops it."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    # An optional second argument names a day that breaks the contract too often, to see a blocked day.
    port = int(sys.argv[1]) if len(sys.argv) > 1 else DEMO_API_PORT
    if len(sys.argv) > 2:
        EventsHandler.invalid_share_by_day = {sys.argv[2]: 0.1}
    print(f"ecom-events API on http://127.0.0.1:{port}/datasets/ecom_events (X-API-KEY: {DEMO_API_KEY})", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), EventsHandler).serve_forever()
