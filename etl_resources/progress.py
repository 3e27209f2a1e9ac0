"""Progress of long work: rows so far and rows/s, logged at a steady interval rather than per batch."""

import logging
import time

PROGRESS_INTERVAL_SECONDS = 10.0


class Progress:
    def __init__(self, log: logging.Logger | None, label: str, interval: float = PROGRESS_INTERVAL_SECONDS):
        self.log, self.label, self.interval = log, label, interval
        self.restart()

    def restart(self) -> None:
        """Count from zero again, for work that starts over."""
        self.started = self.last = time.monotonic()
        self.rows = 0

    def add(self, rows: int) -> None:
        self.rows += rows
        now = time.monotonic()
        if self.log and now - self.last >= self.interval:
            self.last = now
            self.log.info(f"{self.label}: {self.rows:,} rows so far, {self.rate():,.0f} rows/s")

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.rows / elapsed if elapsed > 0 else 0.0

    def summary(self) -> str:
        return f"{self.rows:,} rows in {time.monotonic() - self.started:.1f}s ({self.rate():,.0f} rows/s)"
