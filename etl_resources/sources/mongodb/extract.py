"""Read a MongoDB collection's day through pymongo, in cursor batches of `batch_size` documents, one frame each."""

import datetime as dt
import logging
import urllib.parse
from collections.abc import Iterator
from typing import Any

import polars as pl
import pymongo
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError, ServerSelectionTimeoutError

from etl_resources.secrets import SECRET_REF, SecretStore, redact
from etl_resources.sources.mongodb.bson_values import UnmappedValueError, json_default, plain
from etl_resources.sources.mongodb.model import MongoSource, bson_filter, split_url
from etl_resources.sources.records import record_row, rows_frame

AUTH_FAILED = 18
UNAUTHORIZED = 13
SHOWN_NAMES = 10


class MongoSourceError(RuntimeError):
    """The server could not be reached, refused the credentials, or lacks the database or collection; no secrets in it."""

    def __init__(self, message: str):
        super().__init__(redact(message))


def _client(url: str, **kwargs: Any) -> pymongo.MongoClient:
    """The client of a day's extract; the tests replace it with an in-memory fake of the same API."""
    return pymongo.MongoClient(url, **kwargs)


def connection(source: MongoSource, secrets: SecretStore) -> tuple[str, dict[str, Any]]:
    """The URL without credentials (safe to show) and the client's options, the user and password among them."""
    template = source.url
    if SECRET_REF.fullmatch(template):
        url, user, password = split_url(secrets.substitute(template))
        user, password = (urllib.parse.unquote(part) if part is not None else None for part in (user, password))
    else:
        url, user, password = split_url(template)
        # The user is written URL-encoded; the password is a secret, filled in as it is, so it needs no escaping.
        user = urllib.parse.unquote(user) if user is not None else None
        url, user, password = (secrets.substitute(part) if part is not None else None for part in (url, user, password))
    timeout_ms = int(source.timeout_seconds * 1000)
    options: dict[str, Any] = {
        "tz_aware": True,
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
        "socketTimeoutMS": int(source.read_timeout_seconds * 1000),
        "appname": "etl-platform",
    }
    if user:
        options["username"] = user
    if password is not None:
        options["password"] = password
    return url, options


def _names(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:SHOWN_NAMES])
    return f"{shown} and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else shown or "none"


def _failure(source: MongoSource, url: str, err: PyMongoError) -> MongoSourceError:
    where = f"source '{source.name}'"
    if isinstance(err, ServerSelectionTimeoutError):
        return MongoSourceError(
            f"{where}, field 'url': no server of {url} answered within timeout_seconds={source.timeout_seconds:g} ({str(err)[:300]}) "
            "(fix: check the host, port, TLS options and that this machine may reach it; raise `timeout_seconds` for a slow network)"
        )
    if isinstance(err, OperationFailure) and err.code == AUTH_FAILED:
        user = split_url(source.url)[1] or "the user"
        return MongoSourceError(
            f"{where}, field 'url': {url} refused the user and password in `url` ({user}, authentication failed) "
            "(fix: check the user, the password's secret and `authSource` in the URL's options)"
        )
    if isinstance(err, OperationFailure) and err.code == UNAUTHORIZED:
        return MongoSourceError(
            f"{where}, field 'url': the user in `url` may not read {source.database}.{source.collection} on {url}: {err.details and err.details.get('errmsg')} "
            "(fix: grant the user the `read` role on that database)"
        )
    if isinstance(err, OperationFailure):
        return MongoSourceError(
            f"{where}, field 'filter': {url} refused the query on {source.database}.{source.collection}: {str(err)[:300]} "
            "(fix: check `filter` and `projection`, written as MongoDB query documents in Extended JSON)"
        )
    if isinstance(err, ConfigurationError):
        return MongoSourceError(f"{where}, field 'url': {url}: {err} (fix: correct the URL's hosts and options)")
    return MongoSourceError(f"{where}: {url} {source.database}.{source.collection}: {type(err).__name__}: {str(err)[:300]}")


def _check_collection(source: MongoSource, client: pymongo.MongoClient, url: str) -> None:
    names = client[source.database].list_collection_names()
    if source.collection in names:
        return
    if not names:
        try:
            databases = _names([name for name in client.list_database_names() if name not in ("admin", "config", "local")])
        except OperationFailure:
            databases = "not listed (this user may not list databases)"
        raise MongoSourceError(
            f"source '{source.name}', field 'database': database '{source.database}' does not exist on {url} (it holds no collections); "
            f"databases: {databases} (fix: correct `database`, mind its case)"
        )
    raise MongoSourceError(
        f"source '{source.name}', field 'collection': collection '{source.collection}' does not exist in database '{source.database}'; "
        f"collections: {_names(names)} (fix: correct `collection`, mind its case)"
    )


def day_query(source: MongoSource, window: tuple[dt.datetime, dt.datetime]) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """The filter and sort of a day: ties on the date broken by `_id`, so a day re-runs to the same partition."""
    query = bson_filter(source.filter)
    if source.mode == "snapshot":
        return query, [("_id", pymongo.ASCENDING)]
    start, end = window
    day = {source.timestamp_field: {"$gte": start, "$lt": end}}
    return ({"$and": [query, day]} if query else day), [(source.timestamp_field, pymongo.ASCENDING), ("_id", pymongo.ASCENDING)]


def _frame(source: MongoSource, documents: list[dict[str, Any]]) -> pl.DataFrame:
    rows = []
    for document in documents:
        try:
            record = plain(document)
        except UnmappedValueError as err:
            raise MongoSourceError(f"source '{source.name}': document {document.get('_id')!r} of {source.database}.{source.collection}: {err}") from None
        rows.append(record_row(record, source.nested, json_default))
    return rows_frame(rows, json_default)


def extract_mongodb(source: MongoSource, secrets: SecretStore, window: tuple[dt.datetime, dt.datetime], log: logging.Logger) -> Iterator[pl.DataFrame]:
    """Yield the day's documents in frames of at most `batch_size`; always at least one frame, maybe empty."""
    url, options = connection(source, secrets)
    query, sort = day_query(source, window)
    projection = bson_filter(source.projection) if source.projection is not None else None
    client = _client(url, **options)
    try:
        batch: list[dict[str, Any]] = []
        count = 0
        try:
            _check_collection(source, client, url)
            cursor = client[source.database][source.collection].find(query, projection, sort=sort, batch_size=source.batch_size)
            for document in cursor:
                batch.append(document)
                if len(batch) == source.batch_size:
                    count += len(batch)
                    yield _frame(source, batch)
                    batch = []
        except PyMongoError as err:
            raise _failure(source, url, err) from None
        if batch or not count:
            yield _frame(source, batch)
        log.debug(f"source '{source.name}' {window[0].date()}: {count + len(batch):,} documents from {source.database}.{source.collection}")
    finally:
        client.close()
