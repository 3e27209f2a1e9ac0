"""A MongoDB stand-in for the tests: no MongoDB server can be installed here, so the extractor's `_client` seam
gets mongomock clients over one shared in-memory store.

mongomock reproduces pymongo's `MongoClient` API the extractor uses (`client[db][collection].find(filter,
projection, sort=, batch_size=)`, `list_collection_names`, `list_database_names`, `close`) and keeps BSON's own
types (ObjectId, Decimal128, Int64, Binary, Regex, Code, Timestamp, MinKey/MaxKey), cuts dates to milliseconds
and honours `tz_aware` as pymongo does. What it does not do is made faithful here: the client's options are
validated by pymongo's own validator (an unknown or mistyped option fails as it would), and a wrong user or
password fails the first operation with pymongo's `OperationFailure` code 18, not the constructor. A UUID is
stored as pymongo stores one, as binary subtype 4 (`Binary.from_uuid`), since mongomock refuses a bare UUID.
"""

import os
from typing import Any

import mongomock
import pymongo.common
from pymongo.errors import OperationFailure

MONGODB_URL_VARIABLE = "ETL_TEST_MONGODB_URL"
NO_MONGODB = f"set {MONGODB_URL_VARIABLE}=mongodb://user:password@host:27017/?authSource=admin to run against a real MongoDB"
AUTH_FAILED = {"ok": 0.0, "errmsg": "Authentication failed.", "code": 18, "codeName": "AuthenticationFailed"}


class FakeMongoClient(mongomock.MongoClient):
    """A mongomock client that signs in as pymongo does: lazily, failing the first operation on bad credentials."""

    def __init__(self, url: str, store: Any, signed_in: bool, **options: Any):
        for name, value in options.items():
            pymongo.common.validate(name, value)
        super().__init__(url, tz_aware=options.get("tz_aware", False), _store=store)
        self._signed_in = signed_in

    def _sign_in(self) -> None:
        if not self._signed_in:
            raise OperationFailure(AUTH_FAILED["errmsg"], code=18, details=AUTH_FAILED)

    def get_database(self, *args: Any, **kwargs: Any):
        self._sign_in()
        return super().get_database(*args, **kwargs)

    def list_database_names(self, *args: Any, **kwargs: Any) -> list[str]:
        self._sign_in()
        return super().list_database_names(*args, **kwargs)


class FakeMongo:
    """One in-memory server: its data, the one user it accepts, and every client made, with its URL and options."""

    def __init__(self, user: str = "etl", password: str = "s3cret pass@/:%"):
        self.user, self.password = user, password
        self.admin = mongomock.MongoClient(tz_aware=True)
        self.clients: list[tuple[str, dict[str, Any]]] = []

    def client(self, url: str, **options: Any) -> FakeMongoClient:
        self.clients.append((url, options))
        signed_in = options.get("username") == self.user and options.get("password") == self.password
        return FakeMongoClient(url, self.admin._store, signed_in, **options)

    def insert(self, database: str, collection: str, documents: list[dict[str, Any]]) -> None:
        self.admin[database][collection].insert_many([dict(document) for document in documents])


def mongodb_url() -> str | None:
    return os.environ.get(MONGODB_URL_VARIABLE) or None
