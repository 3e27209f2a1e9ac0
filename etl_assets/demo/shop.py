"""The bundled demo source: a small SQLite shop database (customers, orders), generated locally and deterministically."""

import datetime as dt
import os
import random
import sqlite3
from decimal import Decimal
from pathlib import Path

from etl_assets.demo.events_api import DEMO_API_KEY

DEMO_SOURCES_FILE = Path(__file__).with_name("sources.yaml")
DEMO_DATABASE = Path(".etl/demo/shop.db")
DAYS_OF_ORDERS = 30
CUSTOMERS = 200
COUNTRIES = ("DE", "FR", "GB", "NL", "SE", "ES", "IT", "PL")
STATUSES = ("placed", "paid", "shipped", "delivered", "returned")

SCHEMA = """
CREATE TABLE meta (anchor DATE NOT NULL);
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    country TEXT NOT NULL,
    created_at DATETIME NOT NULL
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
    ordered_at DATETIME NOT NULL,
    status TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    amount NUMERIC(10, 2) NOT NULL
);
"""


def _timestamp(value: dt.datetime) -> str:
    # Full microseconds keep SQLite's text timestamps comparable with the bound window edges.
    return value.isoformat(sep=" ", timespec="microseconds")


def _anchor(path: Path) -> dt.date | None:
    try:
        with sqlite3.connect(path) as conn:
            return dt.date.fromisoformat(conn.execute("SELECT anchor FROM meta").fetchone()[0])
    except (sqlite3.Error, TypeError):
        return None


def build_demo_database(path: Path, anchor: dt.date) -> None:
    """Orders for the DAYS_OF_ORDERS days before `anchor`; the same seed gives the same rows for the same anchor."""
    rng = random.Random(20261101)
    first_day = dt.datetime.combine(anchor - dt.timedelta(days=DAYS_OF_ORDERS), dt.time())
    customers = [
        (i, f"Customer {i:03d}", f"customer{i:03d}@example.com", rng.choice(COUNTRIES), _timestamp(first_day - dt.timedelta(days=rng.randint(1, 400))))
        for i in range(1, CUSTOMERS + 1)
    ]
    orders = []
    for day in range(DAYS_OF_ORDERS):
        for _ in range(rng.randint(80, 160)):
            at = first_day + dt.timedelta(days=day, seconds=rng.randint(0, 86_399), microseconds=rng.randint(0, 999_999))
            amount = Decimal(rng.randint(500, 50_000)) / 100
            orders.append((len(orders) + 1, rng.randint(1, CUSTOMERS), _timestamp(at), rng.choice(STATUSES), rng.randint(1, 5), str(amount)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as conn:
        conn.executescript(SCHEMA)
        conn.execute("INSERT INTO meta VALUES (?)", (anchor.isoformat(),))
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", customers)
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", orders)
    os.replace(tmp, path)


def ensure_demo_secret(secrets_file: Path, name: str = "ECOM_API_KEY", value: str = DEMO_API_KEY) -> None:
    """The demo API's key goes where real secrets go, the local secrets file, unless it is set already."""
    existing = secrets_file.read_text() if secrets_file.exists() else ""
    if not any(line.split("=", 1)[0].strip() == name for line in existing.splitlines()):
        secrets_file.parent.mkdir(parents=True, exist_ok=True)
        secrets_file.write_text(existing + ("" if existing.endswith("\n") or not existing else "\n") + f'{name} = "{value}"\n')


def ensure_demo_database(path: Path = DEMO_DATABASE, today: dt.date | None = None) -> Path:
    """Create the demo database, or roll it forward so its last day of orders is yesterday."""
    today = today or dt.datetime.now(dt.UTC).date()
    if _anchor(path) != today:
        build_demo_database(path, today)
    return path
