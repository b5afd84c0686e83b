"""When to submit: `SubmitPacer`, a submission rate fitted to what the server admits. Pure
logic on a caller-given monotonic clock, no I/O: the runner drives it, tests replay it.
"""

from __future__ import annotations

from collections import deque


class SubmitPacer:
    """How fast to submit: a slow start, then a rate fitted to what the server admits.

    Pure logic on a caller-given clock (seconds, monotonic). `next_launch(now)` says when the
    next submission may start; the runner reports each launch and each answer.

    - Slow start: from `initial_rate`, doubling every half second while submissions go through.
    - A rate limit (one per event: answers to requests sent before we reacted belong to the
      same event) pauses for Retry-After and cuts the rate. When the answers since the previous
      event span long enough to measure, the rate becomes `backoff` × the rate the server
      admitted over that span (for a token bucket that is its refill rate, burst excluded);
      otherwise it is halved from what we were achieving, and grows by `probe_growth` a second
      until the next limit gives a measurement.
    - Once fitted, it creeps up by `recovery_per_second` (a fraction of itself per second of
      submitting), so a raised limit is found again, slowly.
    """

    UNPACED = 1000.0  # above this rate, launches are limited by the workers alone

    def __init__(
        self,
        initial_rate: float = 40.0,
        max_rate: float | None = None,
        *,
        min_rate: float = 0.2,
        backoff: float = 0.95,
        probe_growth: float = 0.25,
        recovery_per_second: float = 0.005,
    ) -> None:
        self.max_rate = max_rate
        self.rate = initial_rate if max_rate is None else min(initial_rate, max_rate)
        self.min_rate = min_rate
        self.backoff = backoff
        self.probe_growth = probe_growth
        self.recovery_per_second = recovery_per_second
        self.slow_start = True
        self.fitted = False  # the rate comes from a measurement of what the server admits
        self.paused_until = 0.0
        self.events = 0
        self._next = 0.0  # the paced time of the next launch
        self._launches: deque[float] = deque(maxlen=4096)
        self._admitted_launches: deque[float] = deque(maxlen=4096)  # launch times, admitted
        self._last_growth: float | None = None
        self._event_at: float | None = None  # when the last event's answer arrived
        self._event_launch: float | None = None  # when its refused request was sent
        self._fit: list[float] | None = None  # [start, end, admitted] of the last measurement

    @property
    def unpaced(self) -> bool:
        return self.rate >= self.UNPACED

    def next_launch(self, now: float) -> float:
        """The earliest time the next submission may start."""
        if self.unpaced:
            return self.paused_until
        return max(self.paused_until, self._next)

    def launched(self, now: float) -> None:
        if self._event_launch is None and not self._launches:
            self._event_launch = now  # measurements start with the first launch
        if self._last_growth is None:
            self._last_growth = now
        self._launches.append(now)
        # Pace from the schedule, but never bank more than half an interval of idle time.
        interval = 1.0 / self.rate
        self._next = max(self._next, now - 0.5 * interval) + interval

    def admitted(self, now: float, launched_at: float | None = None) -> None:
        """The server answered a submission (sent at `launched_at`) with anything but a rate
        limit."""
        sent = now if launched_at is None else launched_at
        self._admitted_launches.append(sent)
        fit = self._fit
        if fit is not None and fit[0] < sent < fit[1]:
            # a late answer to a request sent within the measured span: it counts too
            fit[2] += 1
            self.rate = max(self.rate, self.backoff * fit[2] / (fit[1] - fit[0]))
        last = self._last_growth if self._last_growth is not None else now
        elapsed = min(max(0.0, now - last), 1.0)  # grow only while actually submitting
        self._last_growth = now
        if self.slow_start:
            self.rate = min(self.rate * 2.0 ** (elapsed / 0.5), 10 * self.UNPACED)
        elif self.fitted:
            self.rate *= 1.0 + self.recovery_per_second * elapsed
        else:
            self.rate *= 1.0 + self.probe_growth * elapsed
        if self.max_rate is not None:
            self.rate = min(self.rate, self.max_rate)

    def limited(self, now: float, launched_at: float, retry_after: float | None) -> None:
        """The server refused a submission with a rate limit (429 or "500 Rate Limit")."""
        wait = retry_after if retry_after is not None and retry_after > 0 else 1.0
        self.paused_until = max(self.paused_until, now + wait)
        if self._event_at is not None and launched_at <= self._event_at:
            return  # sent before we slowed down: part of the event already handled
        # Measured by send times, between the requests refused at two events: the server's
        # bucket was empty at both, so what it admitted in between is its refill rate exactly.
        start = self._event_launch if self._event_launch is not None else launched_at
        span = launched_at - start
        admitted = sum(1 for sent in self._admitted_launches if start < sent < launched_at)
        if span >= 2.0 and admitted >= 10:
            self.rate = self.backoff * admitted / span
            self.fitted = True
            self._fit = [start, launched_at, admitted]
        else:
            self._fit = None
            recent = [t for t in self._launches if t > now - 1.0]
            achieved = len(recent) / max(0.25, now - recent[0]) if recent else self.rate
            self.rate = 0.5 * min(self.rate, achieved)
            self.fitted = False
        self.rate = max(self.min_rate, self.rate)
        self.slow_start = False
        self.events += 1
        self._event_at = now
        self._event_launch = launched_at
        self._last_growth = self.paused_until
        self._next = self.paused_until
