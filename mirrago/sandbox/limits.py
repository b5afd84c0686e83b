"""The sandbox's rate limit: a token bucket per client, and the answer a limited submit gets."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from mirrago.sandbox.config import SandboxConfig, SandboxError


class RateLimit:
    """Submits per second per client, as `config.rate_limit` and `config.rate_burst` say at
    the moment of each submit; thread-safe. `clock` tells the time of the buckets' refills."""

    def __init__(self, config: SandboxConfig, clock: Callable[[], float]):
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client_id: str) -> float | None:
        """A token bucket per client holding up to `rate_burst` (or max(1, rate)) submits.
        Returns None when the submit may go ahead, else the seconds until it may."""
        rate = self.config.rate_limit
        if not rate or rate <= 0:
            return None
        burst = self.config.rate_burst
        capacity = float(burst) if burst else max(1.0, float(rate))
        now = self._clock()
        with self._lock:
            tokens, updated = self._buckets.get(client_id, (capacity, now))
            tokens = min(capacity, tokens + (now - updated) * rate)
            if tokens >= 1.0:
                self._buckets[client_id] = (tokens - 1.0, now)
                return None
            self._buckets[client_id] = (tokens, now)
            return (1.0 - tokens) / rate

    def error(self, wait: float) -> SandboxError:
        """The answer to a submit that must wait `wait` seconds."""
        if self.config.strict_reference:
            # The reference's "500 Rate Limit": no Retry-After, as a server to the letter sends.
            return SandboxError(500, "Rate Limit: too many requests.")
        seconds = max(1, math.ceil(wait))  # Retry-After takes whole seconds
        message = (
            f"Rate limit exceeded: at most {self.config.rate_limit:g} submissions per second. "
            f"Retry after {seconds} s."
        )
        return SandboxError(
            429,
            message,
            headers={"Retry-After": str(seconds)},
            body={"detail": message, "retry_after": round(wait, 3)},
        )
