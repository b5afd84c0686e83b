"""One latency fitted to every look, for a server that keeps its queue in order, runs a set
number of jobs at once and takes the same time for each (`LatencyFit`). Pure logic, no I/O:
the poll schedule feeds it and asks it when a job will be done.

Such a server's timetable follows from when the jobs were queued and two figures: with
`parallel` workers and latency L, job p starts at max(queued[p], end[p - parallel]) and ends
L later. Every answer about a job bounds L: "done" at t says its end is at t or before,
"running" at t says after, "waiting" at t says it had not started. The bounds of all answers
together pin L down more tightly the deeper a job is in the queue (its end moves by L once per
worker turn before it), so a run learns its server's latency to a few milliseconds within a
few waves. When no L fits every answer (latencies that vary, a server that does not keep
order, another client's jobs ahead), the fit says so and is not used.
"""

from __future__ import annotations

import bisect
import math

_DONE, _RUNNING, _WAITING = "done", "running", "waiting"
_FIT_LOOKS = 1024  # the latest answers another worker count is tried on (`fits`)
_CLOSER = 2e-5  # a bound moves when it moves by more than this share of the latency


class LatencyFit:
    """The latencies consistent with every answer so far, [low, high], for `parallel`
    workers (set by the caller, which counts them; the answers are weighed again when the
    count changes)."""

    def __init__(self, max_looks: int = 4096) -> None:
        self._queued: list[float] = []  # when each job was queued, in queue order
        self._looks: list[tuple[float, float, str]] = []  # (queued, at, what it said)
        self._max_looks = max_looks
        self._parallel: int | None = None
        # latency -> every job's end with it, by queue place (a prefix): the few latencies
        # asked about again and again (the fit's bounds) cost one step per job, not per turn
        self._timetables: dict[float, list[float]] = {}
        self.low = 0.0
        self.high = math.inf
        self.consistent = True

    # ---- what the schedule tells it

    def queue(self, queued: float) -> None:
        """A job queued at `queued` (on the schedule's clock)."""
        position = bisect.bisect_right(self._queued, queued)
        self._queued.insert(position, queued)
        for ends in self._timetables.values():  # the ends from its place on move
            del ends[position:]

    def set_parallel(self, parallel: int | None) -> None:
        if parallel == self._parallel:
            return
        self._parallel = parallel
        self._timetables.clear()
        self.low, self.high, self.consistent = 0.0, math.inf, True
        for look in self._looks:
            self._bound(*look)

    def done(self, queued: float, at: float) -> None:
        """The job queued at `queued` was found done by an answer received at `at`."""
        self._add((queued, at, _DONE))

    def running(self, queued: float, at: float) -> None:
        """Found running by a request sent at `at` (it ended after)."""
        self._add((queued, at, _RUNNING))

    def waiting(self, queued: float, at: float) -> None:
        """Found waiting for a worker by a request sent at `at` (it started after)."""
        self._add((queued, at, _WAITING))

    # ---- what it says

    @property
    def looks(self) -> int:
        """How many answers it has weighed."""
        return len(self._looks)

    @property
    def usable(self) -> bool:
        """Whether one latency fits every answer, bounded on both sides."""
        return (
            self.consistent
            and self._parallel is not None
            and self.high < math.inf
            and self.low > 0.0
        )

    def end(self, queued: float, latency: float) -> float:
        """When the job queued at `queued` ends, with this latency."""
        ends = self._timetables.get(latency)
        if ends is None:
            if len(self._timetables) >= 4:
                del self._timetables[next(iter(self._timetables))]
            ends = self._timetables[latency] = []
        position, parallel = self._position(queued), self._parallel or 1
        while len(ends) <= position:
            index = len(ends)
            start = self._queued[index]
            if index >= parallel:
                start = max(start, ends[index - parallel])
            ends.append(start + latency)
        return ends[position]

    def _end_with(self, queued: float, latency: float) -> float:
        """`end` for a latency tried once (while solving): not kept."""
        parallel = self._parallel or 1
        position = self._position(queued)
        end = -math.inf
        for index in range(position % parallel, position + 1, parallel):
            end = max(self._queued[index], end) + latency
        return end

    def depth(self, queued: float) -> int:
        """How many worker turns end before the job queued at `queued` does."""
        return self._position(queued) // (self._parallel or 1) + 1

    def _position(self, queued: float) -> int:
        """The job's place in the queue (a time not queued: where it would be)."""
        return min(bisect.bisect_left(self._queued, queued), len(self._queued) - 1)

    # ---- fitting

    def _add(self, look: tuple[float, float, str]) -> None:
        if len(self._looks) < self._max_looks:
            self._looks.append(look)
        if self._parallel is not None:
            self._bound(*look)

    def _bound(self, queued: float, at: float, said: str) -> None:
        if not self.consistent or not self._queued:
            return
        if said == _WAITING:
            # not started at `at`: the job whose end frees its worker ended after `at`
            position = self._position(queued)
            if position < self._parallel or self._queued[position] > at:
                return  # a free worker, or not queued yet: it says nothing of L
            queued, said = self._queued[position - self._parallel], _RUNNING
        if said == _DONE:  # end(L) <= at
            if self.end(queued, self.high) <= at:
                return
            early = self.end(queued, self.low) - at
            if early > 0:  # done before the earliest end: beyond a jitter, no L fits
                self.consistent = early <= self._jitter(queued)
                return
            high = self._solve(queued, at, self.low, min(self.high, at - queued))
            if self.high - high > _CLOSER * high:  # (a hair closer is not worth a new timetable)
                self.high = high
        else:  # end(L) > at
            if self.end(queued, self.low) > at:
                return
            if self.high < math.inf:
                late = at - self.end(queued, self.high)
                if late >= 0:  # still running after the latest end
                    self.consistent = late <= self._jitter(queued)
                    return
            top = self.high if self.high < math.inf else at - queued + 1.0
            low = self._solve(queued, at, self.low, top)
            if low - self.low > _CLOSER * low:
                self.low = low

    def _jitter(self, queued: float) -> float:
        """How far an answer may miss the fitted timetable and the server still count as one
        of fixed latency: its jobs take a few milliseconds more or less (the sandbox's 2 s jobs
        took 2.000-2.050 s), and the differences add up over the worker turns before a job."""
        latency = self.low if self.high == math.inf else self.high
        return 0.01 + 0.03 * latency + 0.01 * math.sqrt(self.depth(queued))

    def fits(self, parallel: int) -> bool:
        """Whether one latency fits every answer so far with `parallel` workers (this fit is
        left as it was)."""
        other = LatencyFit(self._max_looks)
        other._queued, other._looks = self._queued, self._looks[-_FIT_LOOKS:]
        other.set_parallel(parallel)
        return other.consistent and other.high < math.inf and other.low > 0.0

    def _solve(self, queued: float, at: float, low: float, high: float) -> float:
        """The latency in [low, high] at which the job ends at `at` (ends grow with it)."""
        for _ in range(40):
            middle = (low + high) / 2
            if self._end_with(queued, middle) <= at:
                low = middle
            else:
                high = middle
            if high - low < 1e-5:
                break
        return (low + high) / 2
