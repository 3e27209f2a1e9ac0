"""The `mongodb` kind, against a FAKE MongoDB: no MongoDB server can be installed here, so the extractor's
`_client` seam is given mongomock clients (`etl_tests/support/mongodb_server.py`), an in-memory fake of pymongo's
`MongoClient` API that keeps BSON's types and millisecond dates, made faithful where it differs (credentials
checked on the first operation as pymongo does, options validated by pymongo). An unreachable host is tested
with the real pymongo client against a closed port, and `test_a_live_mongodb_day` runs everything against a
real server when ETL_TEST_MONGODB_URL is set.
"""

import base64
import datetime as dt
import json
import logging
import socket
import urllib.parse
import uuid
from decimal import Decimal
from pathlib import Path

import polars as pl
import pymongo
import pytest
from bson import Binary, Decimal128, Int64, ObjectId, Regex
from bson.code import Code
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.timestamp import Timestamp
from dagster._core.events import DagsterEventType

from etl_resources.config.sources_file import SourcesConfigError, load_sources
from etl_resources.lake.store import scan_partition
from etl_resources.secrets import SecretStore
from etl_resources.sources.mongodb.bson_values import plain
from etl_resources.sources.mongodb.extract import MongoSourceError, extract_mongodb
from etl_resources.sources.mongodb.model import MongoSource, split_url
from etl_resources.sources.records import exact_rows
from etl_tests.support.mongodb_server import FakeMongo

UTC = dt.UTC
LOG = logging.getLogger("test")
DAY = (dt.datetime(2026, 11, 1, tzinfo=UTC), dt.datetime(2026, 11, 2, tzinfo=UTC))
HOSTILE = "100% 'single' \"double\" back\\slash Zoë 東京 😀"
BIG = 2**53 + 1
PRICE = "12345678901234567890.123456789"
UID = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")


def oid(n: int) -> ObjectId:
    return ObjectId(f"65f0000000000000000000{n:02x}")


def at(day: int, *time: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, *time, tzinfo=UTC)


FULL = {
    "_id": oid(2),
    "at": at(1),
    "sku": "ABC-1",
    "Customer Name": HOSTILE,
    "qty": Int64(BIG),
    "small": 7,
    "price": Decimal128(PRICE),
    "ratio": 0.25,
    "paid": True,
    "blob": Binary(b"\x00\xff%'\\", 0),
    "uid": Binary.from_uuid(UID),
    "pattern": Regex("^a.b$", "im"),
    "js": Code("return 1;"),
    "low": MinKey(),
    "high": MaxKey(),
    "stamp": Timestamp(1700000000, 7),
    "shipped_at": dt.datetime(2026, 11, 1, 10, 15, 30, 123000, tzinfo=UTC),
    "customer": {"Name": "Zoë", "address": {"city": "東京", "zip": "100-0001"}, "ref": oid(9)},
    "items": [{"sku": "X%", "n": Int64(BIG)}, {"price": Decimal128("0.10"), "when": at(1, 9)}],
    "status": "paid",
}
DOCUMENTS = [
    FULL,
    {"_id": oid(1), "at": at(1), "sku": "ABC-0", "status": "paid"},  # same instant as FULL: `_id` orders them
    {"_id": oid(3), "at": dt.datetime(2026, 11, 1, 23, 59, 59, 999000, tzinfo=UTC), "sku": "ABC-2", "customer": {"Name": None}, "status": "paid"},
    {"_id": oid(4), "at": at(1, 12), "sku": "ABC-3", "status": "deleted"},  # the filter leaves it out
    {"_id": oid(5), "at": at(2, 8), "sku": "ABC-4", "status": "deleted"},  # so 2026-11-02 is empty
    {"_id": oid(6), "at": at(3), "sku": "ABC-5", "status": "paid"},
    {"_id": oid(7), "at": at(3, 8), "sku": "bad sku", "status": "paid"},  # breaks the contract's pattern
    {"_id": oid(8), "at": at(4), "sku": "ABC-6", "status": "paid"},  # midnight belongs to the next day
    {"_id": oid(10), "sku": "ABC-7", "status": "paid"},  # no date: never in a day
]
CUSTOMER_JSON = '{"Name": "Zoë", "address": {"city": "東京", "zip": "100-0001"}, "ref": "65f000000000000000000009"}'
ITEMS_JSON = f'[{{"sku": "X%", "n": {BIG}}}, {{"price": "0.10", "when": "2026-11-01T09:00:00.000000Z"}}]'
# FULL as the lake holds it, column by column, in both nested modes.
FULL_CELLS = {
    "_id": "65f000000000000000000002",
    "at": at(1),
    "sku": "ABC-1",
    "Customer Name": HOSTILE,
    "qty": BIG,
    "small": 7,
    "price": Decimal(PRICE),
    "ratio": 0.25,
    "paid": True,
    "blob": b"\x00\xff%'\\",
    "uid": str(UID),
    "pattern": "/^a.b$/im",
    "js": "return 1;",
    "low": "MinKey",
    "high": "MaxKey",
    "stamp": "Timestamp(1700000000, 7)",
    "shipped_at": dt.datetime(2026, 11, 1, 10, 15, 30, 123000, tzinfo=UTC),
    "items": ITEMS_JSON,
    "status": "paid",
}
NESTED_CELLS = {
    "json": {"customer": CUSTOMER_JSON},
    "flatten": {"customer_Name": "Zoë", "customer_address_city": "東京", "customer_address_zip": "100-0001", "customer_ref": "65f000000000000000000009"},
}


def source(**fields) -> MongoSource:
    config = {
        "name": "orders",
        "kind": "mongodb",
        "url": "mongodb://etl:${MONGO_PASSWORD}@db.example.net:27017/?authSource=admin",
        "database": "shop",
        "collection": "orders",
        "filter": {"status": {"$ne": "deleted"}},
        "mode": "incremental",
        "timestamp_field": "at",
        "start_date": "2026-11-01",
        "target": {"table": "orders"},
    }
    return MongoSource.model_validate(config | fields)


def extract(src: MongoSource, window=DAY) -> list[pl.DataFrame]:
    return list(extract_mongodb(src, SecretStore(Path("secrets.toml")), window, LOG))


@pytest.fixture
def shop(mongo: FakeMongo) -> FakeMongo:
    mongo.insert("shop", "orders", DOCUMENTS)
    mongo.insert("shop", "customers", [{"_id": 1}])
    return mongo


@pytest.mark.parametrize("nested", ["json", "flatten"])
def test_every_bson_type_arrives_exactly_cell_by_cell(shop, nested):
    [frame] = extract(source(nested=nested))

    assert frame["_id"].to_list() == [str(oid(1)), str(oid(2)), str(oid(3))]  # by (at, _id); the deleted one filtered out
    row = frame.row(1, named=True)
    expected = FULL_CELLS | NESTED_CELLS[nested]
    assert {name: row[name] for name in expected} == expected
    assert set(row) == set(expected) | {"_record"}
    assert frame.schema["qty"] == pl.Int64 and frame.schema["price"] == pl.Decimal(38, 9) and frame.schema["blob"] == pl.Binary
    assert frame.schema["at"] == pl.Datetime("us", "UTC")
    record = json.loads(row["_record"])
    assert record["customer"] == json.loads(CUSTOMER_JSON) and record["price"] == PRICE and record["qty"] == BIG
    assert record["blob"] == base64.b64encode(b"\x00\xff%'\\").decode() and record["at"] == "2026-11-01T00:00:00.000000Z"
    assert record["Customer Name"] == HOSTILE and "Zoë 東京 😀" in row["_record"]  # unicode as written, not \u escapes
    missing = frame.row(2, named=True)
    assert missing["qty"] is None and missing["price"] is None and missing["at"] == dt.datetime(2026, 11, 1, 23, 59, 59, 999000, tzinfo=UTC)


def test_the_cursor_reads_in_batches_and_each_batch_is_a_frame(shop, monkeypatch):
    import mongomock.collection

    asked = []
    find = mongomock.collection.Collection.find
    monkeypatch.setattr(mongomock.collection.Collection, "find", lambda self, *args, **kwargs: asked.append(kwargs) or find(self, *args, **kwargs))

    frames = extract(source(mode="snapshot", timestamp_field=None, filter={}, batch_size=4))

    assert [frame.height for frame in frames] == [4, 4, 1]
    assert asked[0]["batch_size"] == 4 and asked[0]["sort"] == [("_id", 1)]
    assert pl.concat(frames, how="diagonal_relaxed")["_id"].to_list() == sorted(str(doc["_id"]) for doc in DOCUMENTS)


def test_the_client_gets_the_password_from_the_secret_and_bounded_timeouts(shop):
    extract(source(timeout_seconds=2.5))

    [(url, options)] = shop.clients
    assert url == "mongodb://db.example.net:27017/?authSource=admin"  # the credentials travel as options, unescaped
    assert options == {
        "tz_aware": True,
        "serverSelectionTimeoutMS": 2500,
        "connectTimeoutMS": 2500,
        "socketTimeoutMS": 600_000,
        "appname": "etl-platform",
        "username": "etl",
        "password": shop.password,
    }


def test_the_whole_url_may_be_one_secret_with_its_password_url_encoded(shop, monkeypatch):
    monkeypatch.setenv("MONGO_URL", f"mongodb://etl:{urllib.parse.quote(shop.password, safe='')}@db.example.net/")

    [frame] = extract(source(url="${MONGO_URL}"))

    assert frame.height == 3
    assert shop.clients[0][0] == "mongodb://db.example.net/" and shop.clients[0][1]["password"] == shop.password


def test_an_empty_day_is_one_empty_frame(shop):
    [frame] = extract(source(), window=(at(2), at(3)))
    assert frame.height == 0


def test_filters_and_projections_take_extended_json(shop):
    src = source(filter={"_id": {"$gte": {"$oid": str(oid(3))}}, "at": {"$lt": {"$date": "2026-11-04T00:00:00Z"}}}, projection={"sku": 1})
    [frame] = extract(src, window=(at(1), at(5)))
    assert set(frame.columns) == {"_id", "sku", "_record"}
    assert frame["sku"].to_list() == ["ABC-3", "ABC-2", "ABC-4", "ABC-5", "bad sku"]  # by `at`; ABC-6 is on 2026-11-04


def test_a_column_no_single_type_holds_becomes_text_not_rounded():
    rows = exact_rows([{"n": BIG, "b": True, "f": 1}, {"n": 1.5, "b": 1, "f": 2.5}])
    assert rows == [{"n": str(BIG), "b": "true", "f": 1}, {"n": "1.5", "b": "1", "f": 2.5}]
    assert plain(Decimal128("NaN")) == "NaN" and plain(Decimal128("1E+6000")) == "1E+6000"
    assert plain(Decimal128("-0.000000000000000000000000000000000001")) == Decimal("-1E-36")


def test_a_wrong_password_names_the_url_and_keeps_the_secret_out(shop, monkeypatch):
    monkeypatch.setenv("MONGO_PASSWORD", "wrong-password")
    with pytest.raises(MongoSourceError) as caught:
        extract(source())
    message = str(caught.value)
    assert "source 'orders', field 'url': mongodb://db.example.net:27017/?authSource=admin refused the user and password" in message
    assert "authentication failed" in message and "wrong-password" not in message


def test_a_missing_collection_names_the_field_and_lists_what_exists(shop):
    with pytest.raises(MongoSourceError) as caught:
        extract(source(collection="Orders"))
    assert "source 'orders', field 'collection': collection 'Orders' does not exist in database 'shop'; collections: customers, orders" in str(caught.value)


def test_a_missing_database_names_the_field_and_lists_what_exists(shop):
    with pytest.raises(MongoSourceError) as caught:
        extract(source(database="shopp"))
    assert "source 'orders', field 'database': database 'shopp' does not exist on mongodb://db.example.net:27017/?authSource=admin" in str(caught.value)
    assert "databases: shop " in str(caught.value)


def test_a_query_the_server_refuses_names_the_filter(shop):
    with pytest.raises(MongoSourceError) as caught:
        extract(source(filter={"status": {"$nee": "deleted"}}))
    refused = "source 'orders', field 'filter': mongodb://db.example.net:27017/?authSource=admin refused the query on shop.orders"
    assert f"{refused}: unknown operator: $nee" in str(caught.value)


def test_an_unreachable_host_fails_within_the_timeout_without_the_password(monkeypatch, workdir):
    """The real pymongo client, against a port on 127.0.0.1 where nothing listens."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("MONGO_PASSWORD", "hunter2-secret")
    started = dt.datetime.now()
    with pytest.raises(MongoSourceError) as caught:
        extract(source(url=f"mongodb://etl:${{MONGO_PASSWORD}}@127.0.0.1:{port}/", timeout_seconds=0.5))
    assert (dt.datetime.now() - started).total_seconds() < 5
    message = str(caught.value)
    assert f"source 'orders', field 'url': no server of mongodb://127.0.0.1:{port}/ answered within timeout_seconds=0.5" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"url": "mongodb://etl:plainpass@h/"}, "field 'url': the password in `url` must be a secret reference"),
        ({"url": "postgres://h/"}, "field 'url': `url` must start with mongodb:// or mongodb+srv://"),
        ({"timestamp_field": None}, "mode `incremental` needs `timestamp_field`"),
        ({"filter": {"at": {"$date": "not a date"}}}, "field 'filter': not a MongoDB document in Extended JSON"),
    ],
)
def test_config_mistakes_fail_when_the_file_loads(tmp_path, fields, expected):
    entry = {"name": "orders", "kind": "mongodb", "url": "mongodb+srv://etl:${P}@c.example.net/", "database": "shop", "collection": "orders"}
    entry |= {"mode": "incremental", "timestamp_field": "at", "start_date": "2026-11-01", "target": {"table": "orders"}}
    (tmp_path / "sources.yaml").write_text(json.dumps({"sources": [{key: value for key, value in (entry | fields).items() if value is not None}]}))
    with pytest.raises(SourcesConfigError) as caught:
        load_sources(tmp_path / "sources.yaml", None)
    assert expected in str(caught.value)


RAW = "raw/orders"
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


def orders_yaml(mode: str = "incremental", nested: str = "json", contract: bool = True) -> str:
    day = "timestamp_field: at\n    " if mode == "incremental" else ""
    checks = (
        """
    contract:
      extra_columns: keep
      columns:
        sku: {type: string, required: true, pattern: "^[A-Z]{3}-\\\\d+$"}
    checks: {reject_rate_max: 0.2}"""
        if contract
        else ""
    )
    return f"""
sources:
  - name: orders
    kind: mongodb
    url: mongodb://etl:${{MONGO_PASSWORD}}@db.example.net:27017/?authSource=admin
    database: shop
    collection: orders
    filter: {{status: {{$ne: deleted}}}}
    mode: {mode}
    {day}nested: {nested}
    batch_size: 2
    start_date: 2026-11-01
    target: {{table: orders}}{checks}
"""


def verdicts(platform, run_id: str, check: str) -> dict[str | None, bool]:
    records = platform.instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    found = [record.event_log_entry.dagster_event.asset_check_evaluation_data for record in records]
    return {e.partition: e.passed for e in found if e.check_name == check}


def lake_rows(platform, defs, dataset: str, day: str) -> list[dict]:
    return scan_partition(platform.lake(defs), dataset, day).collect().rows(named=True)


def in_sqlite(value):
    """A lake cell as the SQLite warehouse holds it: timestamps and wide decimals as text, booleans as 0/1."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, Decimal):
        return str(value)
    return int(value) if isinstance(value, bool) else value


def day_one(nested: str) -> list[dict]:
    """2026-11-01 as the lake must hold it: ordered by (at, _id), the deleted document filtered out."""
    sparse = dict.fromkeys(FULL_CELLS | NESTED_CELLS[nested])
    return [
        sparse | {"_id": str(oid(1)), "at": at(1), "sku": "ABC-0", "status": "paid"},
        FULL_CELLS | NESTED_CELLS[nested],
        sparse
        | {"_id": str(oid(3)), "at": dt.datetime(2026, 11, 1, 23, 59, 59, 999000, tzinfo=UTC), "sku": "ABC-2", "status": "paid"}
        | ({"customer": '{"Name": null}'} if nested == "json" else {}),
    ]


def test_three_days_to_the_lake_and_the_warehouse_with_the_gate_failing_only_the_bad_day(platform, shop):
    defs = platform.configure(orders_yaml())

    result = platform.materialize(defs, DAYS[0], DAYS[-1], raise_on_error=False)

    assert not result.success  # the bad day fails the load step, so the run is red
    assert verdicts(platform, result.run_id, "reject_rate") == {"2026-11-01": True, "2026-11-02": True, "2026-11-03": False}
    assert platform.materialized_partitions(["warehouse", "orders"]) == {"2026-11-01", "2026-11-02"}
    assert lake_rows(platform, defs, RAW, "2026-11-01") == day_one("json")  # cell by cell, every BSON type
    assert lake_rows(platform, defs, RAW, "2026-11-02") == []
    assert [row["sku"] for row in lake_rows(platform, defs, RAW, "2026-11-03")] == ["ABC-5"]  # midnight in, the next midnight out
    [reject] = lake_rows(platform, defs, "rejects/orders", "2026-11-03")
    assert reject["errors"][0]["field"] == "sku" and "pattern" in reject["errors"][0]["reason"]
    assert json.loads(reject["record"])["_id"] == str(oid(7))

    expected = day_one("json")
    columns = list(expected[0])
    quoted = ", ".join(f'"{name}"' for name in columns)
    warehouse = platform.query(defs, f"SELECT {quoted} FROM orders ORDER BY at, _id")
    assert warehouse == [tuple(in_sqlite(row[name]) for name in columns) for row in expected]
    assert platform.query(defs, "SELECT DISTINCT _partition FROM orders") == [("2026-11-01",)]


def test_a_rerun_of_a_day_writes_the_same_partition(platform, shop):
    defs = platform.configure(orders_yaml(contract=False))
    assert platform.materialize(defs, "2026-11-01").success
    first = scan_partition(platform.lake(defs), RAW, "2026-11-01").collect()

    shop.insert("shop", "orders", [{"_id": oid(11), "at": at(2, 1), "sku": "ABC-9", "status": "paid"}])  # another day's arrival
    assert platform.materialize(defs, "2026-11-01").success

    again = scan_partition(platform.lake(defs), RAW, "2026-11-01").collect()
    assert again.equals(first) and again["_id"].to_list() == [str(oid(1)), str(oid(2)), str(oid(3))]
    assert platform.query(defs, "SELECT COUNT(*) FROM orders") == [(3,)]


def test_a_snapshot_with_flattened_documents_reads_the_whole_collection_every_day(platform, shop):
    defs = platform.configure(orders_yaml(mode="snapshot", nested="flatten", contract=False))

    assert platform.materialize(defs, "2026-11-01", "2026-11-02").success

    undeleted = sorted(str(doc["_id"]) for doc in DOCUMENTS if doc["status"] != "deleted")
    for day in ("2026-11-01", "2026-11-02"):
        rows = lake_rows(platform, defs, RAW, day)
        assert [row["_id"] for row in rows] == undeleted
        full = next(row for row in rows if row["_id"] == str(oid(2)))
        assert {name: full[name] for name in FULL_CELLS | NESTED_CELLS["flatten"]} == FULL_CELLS | NESTED_CELLS["flatten"]
    assert platform.query(defs, "SELECT _partition, COUNT(*) FROM orders GROUP BY _partition") == [("2026-11-01", 7), ("2026-11-02", 7)]
    assert platform.query(defs, "SELECT customer_address_city, qty FROM orders WHERE _id = :id AND _partition = '2026-11-02'", id=str(oid(2))) == [
        ("東京", BIG)
    ]


def test_a_live_mongodb_day(mongodb_live_url, monkeypatch, workdir):
    """The real pymongo client against ETL_TEST_MONGODB_URL: a collection of its own, a day's documents and their
    neighbours written, the day extracted with the password as a secret, compared cell by cell, the collection dropped."""
    url, user, password = split_url(mongodb_live_url)
    scheme, _, hosts = url.partition("://")
    if password is not None:
        monkeypatch.setenv("ETL_LIVE_MONGO_PASSWORD", urllib.parse.unquote(password))
    template = f"{scheme}://{user}:${{ETL_LIVE_MONGO_PASSWORD}}@{hosts}" if password is not None else mongodb_live_url
    database = pymongo.uri_parser.parse_uri(mongodb_live_url)["database"] or "etl_test"
    name = f"etl_test_{uuid.uuid4().hex[:12]}"
    with pymongo.MongoClient(mongodb_live_url, serverSelectionTimeoutMS=10_000) as client:
        collection = client[database][name]
        try:
            collection.insert_many([dict(document) for document in DOCUMENTS])
            [frame] = extract(source(url=template, database=database, collection=name))
        finally:
            collection.drop()
        assert name not in client[database].list_collection_names()
    assert [{column: row[column] for column in expected} for row, expected in zip(frame.rows(named=True), day_one("json"), strict=True)] == day_one("json")
