"""The one backoff policy of the package: how long to wait before trying something again.

Capped, jittered exponential backoff with a floor, honouring a server's Retry-After (itself
capped), after stripe-python's `_sleep_time_seconds`. The client's retries of idempotent
requests, the runner's rescheduled polls, paused submissions and downloads, and every retry of
the job ledger wait this long.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import TypeVar

RETRY_AFTER_MAX = 60.0  # a server asking for longer is asked again after a minute anyway

T = TypeVar("T")


def backoff(
    attempt: int,
    *,
    base: float = 0.5,
    cap: float = 8.0,
    retry_after: float | None = None,
    jitter: bool = True,
) -> float:
    """Seconds to wait before retry number `attempt` (0 for the first retry).

    `base * 2**attempt`, capped at `cap`; with `jitter`, a random point in its upper half (so
    many waiters do not retry in step), never below `base`. A `retry_after` the server gave
    wins when it is longer (capped at RETRY_AFTER_MAX).
    """
    delay = min(cap, base * 2 ** max(0, min(attempt, 32)))
    if jitter:
        delay *= 0.5 * (1.0 + random.random())
    delay = max(min(base, cap), delay)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, RETRY_AFTER_MAX))
    return delay


def keep_trying(
    call: Callable[[], T],
    *,
    retry_on: tuple[type[BaseException], ...],
    on_failure: Callable[[BaseException], None] = lambda error: None,
    stop: threading.Event | None = None,
    cap: float = 5.0,
) -> T:
    """`call()` until it returns, retrying the errors in `retry_on` with `backoff` (capped at
    `cap`), calling `on_failure(error)` after each failure. When `stop` is set, the last error
    is raised instead of waiting again."""
    attempt = 0
    while True:
        try:
            return call()
        except retry_on as error:
            on_failure(error)
            delay = backoff(attempt, cap=cap)
            attempt += 1
            if stop is None:
                threading.Event().wait(delay)
            elif stop.is_set() or stop.wait(delay):
                raise
