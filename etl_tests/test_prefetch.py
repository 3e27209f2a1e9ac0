"""Read-ahead keeps order, surfaces the source's error, and stops and closes the source when the caller stops."""

import threading

import pytest

from etl_resources.prefetch import prefetch


def test_items_arrive_in_order():
    assert list(prefetch(range(1000), depth=3)) == list(range(1000))


def test_the_sources_error_is_raised_to_the_caller():
    def source():
        yield 1
        raise ConnectionError("source went away")

    with pytest.raises(ConnectionError, match="source went away"):
        list(prefetch(source()))


def test_stopping_early_closes_the_source():
    closed = threading.Event()

    def source():
        try:
            for i in range(10_000):
                yield i
        finally:
            closed.set()

    stream = prefetch(source(), depth=2)
    assert next(stream) == 0
    stream.close()

    assert closed.wait(5)
