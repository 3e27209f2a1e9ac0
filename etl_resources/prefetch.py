"""Read ahead: pull the next batches from the source on a thread while the caller writes the current one.

The source's fetch (ADBC, the database driver) and the Parquet writer both run in native code, so on
two cores they overlap instead of taking turns.
"""

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()
JOIN_SECONDS = 30


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield `items` in order, at most `depth` ahead; errors surface here, and stopping early stops the reader."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    source = iter(items)

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in source:
                if not offer(item):
                    break
        except BaseException as err:
            offer(err)
        else:
            offer(_DONE)
        finally:
            if hasattr(source, "close"):
                source.close()

    reader = threading.Thread(target=read, name="prefetch", daemon=True)
    reader.start()
    try:
        while (item := buffer.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # A reader blocked in a slow fetch notices the stop after that fetch; don't hold the caller's error for it.
        reader.join(timeout=JOIN_SECONDS)
