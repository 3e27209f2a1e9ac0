"""Read ahead: pull the next batches from the source on a thread while the caller writes the current one.

The source's fetch (ADBC, the database driver, the Parquet reader) and the writer both run in native code,
so on two cores they overlap instead of taking turns. Reading starts as soon as the read-ahead is made, so
a caller can open its own connection and run its DDL while the first batch is still being read.
"""

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()
JOIN_SECONDS = 30


class ReadAhead(Generic[T]):
    """Yields `items` in order, at most `depth` ahead; errors surface here, and `close()` stops and closes the source."""

    def __init__(self, items: Iterable[T], depth: int = 2):
        self._buffer: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._source = iter(items)
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="prefetch", daemon=True)
        self._reader.start()

    def _offer(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            for item in self._source:
                if not self._offer(item):
                    break
        except BaseException as err:
            self._offer(err)
        else:
            self._offer(_DONE)
        finally:
            if hasattr(self._source, "close"):
                self._source.close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        item = self._buffer.get()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        # A reader blocked in a slow fetch notices the stop after that fetch; don't hold the caller's error for it.
        self._reader.join(timeout=JOIN_SECONDS)
