"""How long an HTTP source waits before trying again: the server's `Retry-After`, else exponential backoff with jitter.

Shared by the REST and Google Sheets kinds, which retry connection errors, timeouts, 429 and 5xx alike."""

import math
import random

import httpx


def retry_after(response: httpx.Response, cap: float = math.inf) -> float | None:
    """The seconds `Retry-After` asks for (at most `cap`); None when it is absent or not a number of seconds."""
    try:
        return min(cap, max(0.0, float(response.headers["Retry-After"])))
    except (KeyError, ValueError):
        return None


def backoff(attempt: int, base_seconds: float, cap_seconds: float = math.inf) -> float:
    """The wait after failed attempt `attempt` (1, 2, …): doubling from `base_seconds`, capped, with jitter so clients spread out."""
    return min(cap_seconds, base_seconds * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
