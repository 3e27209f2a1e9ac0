"""Read-ahead keeps order, surfaces the source's error, and stops and closes the source when the caller stops."""

import threading

import pytest

from etl_resources.prefetch import ReadAhead


def test_items_arrive_in_order():
    assert list(ReadAhead(range(1000), depth=3)) == list(range(1000))


def test_the_sources_error_is_raised_to_the_caller():
    def source():
        yield 1
        raise ConnectionError("source went away")

    with pytest.raises(ConnectionError, match="source went away"):
        list(ReadAhead(source()))


def test_stopping_early_closes_the_source():
    closed = threading.Event()

    def source():
        try:
            yield from range(10_000)
        finally:
            closed.set()

    stream = ReadAhead(source(), depth=2)
    assert next(stream) == 0
    stream.close()

    assert closed.wait(5)


def test_reading_starts_before_the_caller_asks():
    """The warehouse load connects and runs its DDL while the first batch is read; that needs an eager reader."""
    started = threading.Event()

    def source():
        started.set()
        yield 1

    stream = ReadAhead(source())
    assert started.wait(5)
    assert list(stream) == [1]
