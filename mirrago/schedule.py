"""When to poll: `PollSchedule`, which jobs in progress to ask about, and when (submitting is
paced by `mirrago.pacing.SubmitPacer`). Pure logic on a caller-given monotonic clock, no I/O:
the runner drives it, tests replay it.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mirrago.backoff import backoff
from mirrago.latencyfit import LatencyFit

# A fitted first look (`_plan_fitted`): at most this late, else it halves the fit's range.
_TIGHT = 0.03


def _slack(fit: LatencyFit, tracked: TrackedJob) -> float:
    """How long after its fitted end a job is asked about: for the request to reach the server
    after it, and for the few milliseconds each worker turn before it may have run over."""
    return 0.005 + 0.004 * math.sqrt(fit.depth(tracked.queued))


# Answers that say a job waits in the server's queue (not started): every worker is busy.
WAITING_STATUSES = frozenset({"pending", "queued", "waiting", "in_queue"})


@dataclass(eq=False)  # one object per job: found in lists by identity, not field by field
class TrackedJob:
    """A job in progress at the server, as the poll schedule sees it."""

    row_id: int
    job_id: str
    submitted: float  # monotonic time its submission was answered
    seq: int
    due: float
    raw_status: str | None = None
    polls: int = 0
    errors: int = 0
    last_asked: float | None = None
    added: float = 0.0
    front_since: float | None = None  # when it came within `window` of the oldest job
    head_since: float | None = None  # when it became the oldest job in progress
    asked_at: float = 0.0  # when the request now in flight was taken (it is sent after)
    seen_running: float | None = None  # when a request answered "not done yet" was taken
    expected: float | None = None  # the earliest it can be done, by the queue model
    not_before: float = 0.0  # newer than a job just seen running: not done before its next look
    ask_now: bool = False  # adopted after a restart: asked at once, not when expected
    queued: float = 0.0  # its place in the server's queue, on this clock (see `add`)

    @property
    def order(self) -> tuple[float, int]:
        return (self.queued, self.seq)


class PollSchedule:
    """When to ask the server about each job in progress. Pure logic on a caller's clock.

    Jobs are kept in submission order, which is the server's queue order. One round of
    requests is in flight at a time:
    - a probe asks about the oldest job alone; while it is not done, newer jobs wait for it
      (they cannot be done either, the server works in order);
    - once it is done, a sweep asks about the next `window` jobs at once; `window` tracks how
      many jobs the server finishes together (its parallelism), as seen so far.
    The first look at a job is one latency (the fastest completion seen) after submission; the
    oldest job is then probed every tenth of a latency, backing off the longer it stays oldest.
    Jobs near the front are still asked about every few latencies, so a server that does not
    keep order exactly cannot hide a finished job for long.

    Timed from what the server has shown: `history` is the backend's recent submit -> done
    durations (lower bounds, from the ledger), so the first looks of a new run are timed from
    the start. An answer "pending" (or "queued") says every worker of the server is busy with
    older jobs: at most that many run at once (`parallel`; a few probes find it in a run). Once
    both are known, a queue model says when each job can be done at the earliest: a server with
    `parallel` workers starts a queued job when the `parallel`-th older job ends (`expected`,
    built on lower bounds only, so not later than the job can be done); the first look comes a
    twentieth of a latency after it, then the looks grow apart as before. When those first
    looks mostly find jobs still running (latencies that vary a lot), the model stands aside.
    The latency the model adds is the fastest lower bound seen (never late). When one latency
    and the parallelism fit every answer so far (`LatencyFit`: a server that keeps order and
    takes the same time for each job), the fitted timetable times the looks instead: a job is
    asked about just after the latest it can end, to a few milliseconds once a few waves of
    jobs have been seen, and the counted parallelism gives way to the one that fits.
    Without history or "pending" answers the schedule is what it was. `new_samples()` hands
    the durations seen since the last call to whoever keeps the history.
    """

    def __init__(
        self,
        *,
        first_delay: float = 0.5,
        min_interval: float = 0.05,
        max_interval: float = 5.0,
        min_window: int = 4,
        max_window: int = 64,
        history: Sequence[float] = (),
        parallel: int | None = None,
    ) -> None:
        self.first_delay = first_delay
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.min_window = min_window
        self.max_window = max_window
        self.window = min_window
        self.paused_until = 0.0
        self._jobs: list[TrackedJob] = []
        self._by_row: dict[int, TrackedJob] = {}
        self._in_flight: dict[int, TrackedJob] = {}
        # The fastest submission-to-done times seen in this run, as estimated and as lower
        # bounds. Fastest over the whole run: in a long queue later jobs wait for a worker
        # first, and only the first ones tell how long a job takes.
        self._fastest: float | None = None
        self._fastest_low: float | None = None
        self._seq = itertools.count()
        self._sweep_next = False
        self._round_kind = ""
        self._round_not_done = 0
        self._streak = 0
        # The fastest the backend was seen to finish a job: a first look never later than
        # that (a job that failed at once only makes the first looks early).
        self._prior = min((d for d in history if d > 0), default=None)
        self._finished: list[float] = []  # when done jobs ended, at the earliest, sorted
        # [queue place, older jobs in progress] when a job answered "pending"; a job tracked
        # later that is older (its submission answered late) adds one: it was running too.
        # [place, ahead, clean, the job just ahead running] (see `_end_round`)
        self._pending_ahead: deque[list[float]] = deque(maxlen=32)
        self._round_waiting: list[TrackedJob] = []  # answered "pending" in this round
        self._round_running: set[int] = set()  # answered "running" in this round
        self._round_asked: set[int] = set()  # asked in this round
        self._round_at = 0.0  # when this round was taken
        self._round_head: tuple[int, bool] = (-1, False)  # this round's oldest job, and done
        if parallel:  # the history's bound, until this run sees "pending" itself
            self._pending_ahead.append([float("-inf"), parallel, False, False])
        self._new: list[float] = []
        self._fit = LatencyFit()  # one latency fitted to every answer (see mirrago.latencyfit)
        self._fitted_parallel: int | None = None  # see _fit_parallel
        self._fit_searched, self._fit_searches = -20, 0
        self._clock_offset: float | None = None  # this clock minus the server's
        # First looks the queue model timed, and how many found the job done: latencies that
        # vary a lot make its earliest times too early to be worth a request, and it stands
        # aside (the schedule as without it).
        self._model_looks = 0
        self._model_hits = 0
        self._model_basis = 0.0  # the latency those looks were timed with
        # Looking for how many jobs the server runs at once (see _discovery_probe).
        self._discover_rounds = 0 if parallel else 4
        self._discovering: set[int] = set()
        self._discover_span = [0, -1]  # this round's last running and first pending position

    # ---- membership

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, row_id: object) -> bool:
        return row_id in self._by_row

    @property
    def latency(self) -> float | None:
        """The service's latency as seen: the fastest recent submission-to-done time (before
        any is seen in this run, the backend's history says)."""
        if self._fastest is not None:
            return self._fastest
        return None if self._prior is None else self._prior * 1.05  # see latency_low

    @property
    def latency_low(self) -> float | None:
        """The fastest submission-to-done time, at the earliest (lower bounds, the backend's
        history included): what the queue model adds to a job's earliest start."""
        seen = [value for value in (self._fastest_low, self._prior) if value is not None]
        low = min(seen) if seen else None
        fitted = self._fit.low if self._fit.usable else None
        return fitted if low is None or (fitted is not None and fitted > low) else low

    @property
    def fitted_latency(self) -> tuple[float, float] | None:
        """The latencies that fit every answer so far (`LatencyFit`), when one does."""
        return (self._fit.low, self._fit.high) if self._fit.usable else None

    @property
    def parallel(self) -> int | None:
        """How many jobs the server runs at once: the count that fits every answer with one
        latency (`_fit_parallel`), else at most as many as "pending" answers showed."""
        return self._fitted_parallel or self._counted_parallel()

    def _fit_parallel(self) -> None:
        """When the counted parallelism fits no single latency, the one near it that does (a
        count can be swollen by jobs that ended unseen, or moved by one when a job started
        between two answers of a round). Looked for again after 20 more answers while none
        fits, 8 times at most: a server whose latencies vary fits none, and the count stands."""
        counted, fit = self._counted_parallel(), self._fit
        if counted is None:
            return
        fit.set_parallel(self._fitted_parallel or counted)
        if fit.consistent or fit.looks < self._fit_searched + 20 or self._fit_searches >= 8:
            return
        self._fit_searched, self._fit_searches = fit.looks, self._fit_searches + 1
        found = [n for n in range(max(1, counted - 12), counted + 2) if fit.fits(n)]
        self._fitted_parallel = found[0] if len(found) == 1 else None
        fit.set_parallel(self._fitted_parallel or counted)

    def _counted_parallel(self) -> int | None:
        """How many jobs the server runs at once, at most, as "pending" answers showed."""
        if not self._pending_ahead:
            return None
        # A count not swollen by jobs that ended unseen, where the job just ahead of the
        # waiting one was found running in the same round, is the parallelism of a server that
        # keeps order (their middle value: a job that starts or ends between two answers of a
        # round moves one by one). Other clean counts bound it (jobs ahead of the waiting one
        # may wait too); the rest (and the history's) bound it loosely: used while there are
        # none.
        adjacent = sorted(ahead for _, ahead, _, next_to in self._pending_ahead if next_to)
        if adjacent:
            return max(1, int(adjacent[(len(adjacent) - 1) // 2]))
        exact = [ahead for _, ahead, running, _ in self._pending_ahead if running]
        return max(1, int(min(exact or [ahead for _, ahead, _, _ in self._pending_ahead])))

    @property
    def model_helps(self) -> bool:
        """Whether the queue model's first looks mostly find the job done (or too few tell)."""
        basis = self.latency_low
        if basis is not None and abs(basis - self._model_basis) > 0.02 * basis:
            # a new figure for the latency makes a new model: its looks are counted afresh
            self._model_basis, self._model_looks, self._model_hits = basis, 0, 0
        return self._model_looks < 20 or self._model_hits >= 0.5 * self._model_looks

    def new_samples(self) -> list[float]:
        """The submit -> done durations (lower bounds) seen since the last call."""
        samples, self._new = self._new, []
        return samples

    def add(
        self,
        row_id: int,
        job_id: str,
        submitted: float,
        now: float,
        *,
        raw_status: str | None = None,
        ask_now: bool = False,
        created: datetime | None = None,
    ) -> TrackedJob:
        """Track a job; `created`: when the server says it created it (its clock),
        which orders jobs as the server queued them even when concurrent submissions were
        answered in another order."""
        if row_id in self._by_row:
            return self._by_row[row_id]
        queued = submitted
        if created is not None:
            if self._clock_offset is None:  # one offset: the server's order is kept exactly
                self._clock_offset = submitted - created.timestamp()
            queued = created.timestamp() + self._clock_offset
        delay = self.latency if self.latency is not None else self.first_delay
        tracked = TrackedJob(
            row_id=row_id,
            job_id=job_id,
            submitted=submitted,
            seq=next(self._seq),
            due=now if ask_now else max(now, submitted + delay),
            raw_status=raw_status,
            added=now,
            ask_now=ask_now,
            not_before=now,
            queued=queued,
        )
        bisect.insort(self._jobs, tracked, key=lambda job: job.order)
        self._fit.queue(queued)
        self._by_row[row_id] = tracked
        for seen in self._pending_ahead:
            if queued < seen[0]:
                seen[1] += 1
        self._plan()
        return tracked

    def remove(self, row_id: int) -> None:
        tracked = self._by_row.pop(row_id, None)
        if tracked is not None:
            self._jobs.remove(tracked)
        if self._in_flight.pop(row_id, None) is not None and not self._in_flight:
            self._end_round()

    # ---- choosing what to ask

    def take_due(self, now: float) -> list[TrackedJob]:
        """The jobs to ask about now (marked in flight until answered), maybe none."""
        if self._in_flight or not self._jobs or now < self.paused_until:
            return []
        for tracked in self._jobs[: self.window]:
            if tracked.front_since is None:
                tracked.front_since = now
        head = self._jobs[0]
        if head.head_since is None:
            head.head_since = now
        if head.due <= now:
            if self._sweep_next:
                chosen = []
                for tracked in self._jobs[: self.window]:
                    if tracked.due > now:
                        break
                    chosen.append(tracked)
                kind = "sweep" if len(chosen) == self.window else "probe"
            else:
                chosen, kind = [head], "probe"
                chosen += self._discovery_probe()
        else:
            chosen, kind = self._overdue(now), "guard"
        if chosen:
            self._round_kind = kind
            self._round_not_done = 0
            # (not asked about: whether it still runs is not known, as if done)
            self._round_head = (head.row_id, head not in chosen)
            self._round_at = now
            self._round_asked = {tracked.row_id for tracked in chosen}
            for tracked in chosen:
                tracked.asked_at = now
                self._in_flight[tracked.row_id] = tracked
        return chosen

    def _discovery_probe(self) -> list[TrackedJob]:
        """Once the latency is known and while the parallelism is not, more jobs with a probe
        of the oldest while it runs: up to 8 positions spread between it and the newest, then
        between the last running and the first pending position of that round, to one job
        (a few rounds, once a run). A pending job bounds the parallelism by the jobs ahead of
        it: when the oldest runs, those are running too."""
        if not self._discover_rounds or self.latency is None or len(self._jobs) <= 2:
            return []
        if self._jobs[0].seen_running is None:
            return []
        low, high = self._discover_span
        high = len(self._jobs) - 1 if high < 0 else min(high, len(self._jobs) - 1)
        if high - low <= 1:
            self._discover_rounds = 0
            return []
        step = max(1, (high - low) // 8)
        positions = range(max(1, low + step), high + 1, step)
        chosen = [self._jobs[index] for index in positions]
        self._discovering = {job.row_id for job in chosen}
        self._discover_rounds -= 1
        self._discover_span = [low, -1]
        return chosen

    def _max_gap(self) -> float:
        latency = self.latency or self.first_delay
        return min(self.max_interval * 4, max(3.0, 3.0 * latency))

    def _overdue(self, now: float) -> list[TrackedJob]:
        return [t for t in self._jobs[: self.window] if self._guard_at(t, now) <= now]

    def _guard_at(self, tracked: TrackedJob, default: float) -> float:
        """When a job near the front is asked about whatever else the schedule says: a few
        latencies after it was last seen (a server that does not keep order exactly cannot
        hide a finished job for long), and not before the fitted timetable says it can have
        ended."""
        at = _last_seen(tracked, default) + self._max_gap()
        if self._fit.usable:
            at = max(at, self._fit.end(tracked.queued, self._fit.low))
        return at

    def next_wakeup(self) -> float | None:
        """When `take_due` may next have something (None: nothing tracked or a round is out)."""
        if self._in_flight or not self._jobs:
            return None
        head_due = self._jobs[0].due
        guard = min(self._guard_at(t, head_due) for t in self._jobs[: self.window])
        return max(self.paused_until, min(head_due, guard))

    # ---- answers

    def answered(self, row_id: int, now: float, *, done: bool, raw_status: str | None) -> None:
        """The server said whether the job is final (completed or failed)."""
        tracked = self._in_flight.pop(row_id, None)
        if tracked is None:
            return
        previous = tracked.last_asked
        tracked.polls += 1
        tracked.last_asked = now
        tracked.errors = 0
        tracked.raw_status = raw_status
        if row_id == self._round_head[0] and done:
            self._round_head = (row_id, True)
        if tracked.polls == 1 and tracked.expected is not None:
            self._model_looks += 1
            self._model_hits += done
        waiting = not done and (raw_status or "").strip().lower() in WAITING_STATUSES
        if done:
            self._fit.done(tracked.queued, now)
        elif waiting:
            self._fit.waiting(tracked.queued, tracked.asked_at)
        else:
            self._fit.running(tracked.queued, tracked.asked_at)
        if done:
            # As before: it finished between the previous look and this one, counted from
            # the middle; the first looks of jobs the model does not time come from these.
            finished = now if previous is None else (previous + now) / 2
            took = max(0.0, finished - tracked.submitted)
            self._fastest = took if self._fastest is None else min(self._fastest, took)
            # For the queue model, lower bounds only: it ended after the last answer "not
            # done", and not before its submission plus the fastest latency or the model's
            # earliest, so what the model builds on them is never late.
            low = self.latency_low
            bounds = [] if low is None else [tracked.submitted + low]
            if tracked.expected is not None:
                bounds.append(tracked.expected)
            if tracked.seen_running is not None:
                bounds.append(tracked.seen_running)
            earliest = min(now, max(bounds)) if bounds else now
            sample = max(0.0, earliest - tracked.submitted)
            if now - earliest <= 0.25 * sample or self._fastest_low is None:
                # a tight bound (looks close together) is a latency; a loose one says little
                self._fastest_low = (
                    sample if self._fastest_low is None else min(self._fastest_low, sample)
                )
                self._new.append(sample)
            # The queue model builds on this lower bound too: a job asked late (held behind an
            # older one, or on a busy machine) must not make the jobs after it expected late.
            bisect.insort(self._finished, earliest)
            self._streak += 1
            self._by_row.pop(row_id, None)
            self._jobs.remove(tracked)
            self._plan()
        else:
            # not done when the server answered, so not before the request was sent: a lower
            # bound however late this answer is handled (a busy machine)
            tracked.seen_running = tracked.asked_at
            if waiting:
                # every worker is busy with older jobs (the server keeps order): counted when
                # the round is over, once the older jobs it found done are no longer counted
                self._round_waiting.append(tracked)
            else:
                self._round_running.add(row_id)
            if row_id in self._discovering:
                self._discovering.discard(row_id)
                index, span = self._jobs.index(tracked), self._discover_span
                if waiting:
                    span[1] = index if span[1] < 0 else min(span[1], index)
                else:
                    span[0] = max(span[0], index)
            self._round_not_done += 1
            tracked.due = now + self._interval(tracked, now)
            if self._fit.usable:  # its end as the fitted latency says, at the latest
                fit = self._fit
                tracked.due = max(
                    now + self.min_interval,
                    fit.end(tracked.queued, fit.high) + _slack(fit, tracked),
                )
            index = bisect.bisect_right(self._jobs, tracked.order, key=lambda job: job.order)
            for newer in self._jobs[index:]:
                newer.not_before = max(newer.not_before, tracked.due)
                if newer.due < tracked.due:
                    newer.due = tracked.due
        if not self._in_flight:
            self._end_round()

    def unanswered(self, row_id: int, now: float, *, retry_after: float | None = None) -> None:
        """The request failed (network, 5xx, rate limit): ask again soon; says nothing of order."""
        tracked = self._in_flight.pop(row_id, None)
        if tracked is not None:
            tracked.errors += 1
            tracked.last_asked = now
            # no jitter: the schedule is pure logic, and one round is in flight at a time
            delay = backoff(tracked.errors - 1, base=0.2, cap=self.max_interval, jitter=False)
            tracked.due = now + delay
            if retry_after is not None:
                self.paused_until = max(self.paused_until, now + retry_after)
        if not self._in_flight:
            self._end_round()

    def _interval(self, tracked: TrackedJob, now: float) -> float:
        latency = self.latency
        if latency is None:
            wait = 0.3 * max(now - tracked.submitted, self.first_delay)
        else:
            # Only the oldest job is probed this often, so this costs a few requests per
            # latency, not per job; it bounds how late the last job of a batch is seen. The
            # longer a job stays the oldest, the slower it evidently is: back off.
            held = now - (tracked.head_since if tracked.head_since is not None else now)
            wait = 0.1 * latency + 0.1 * held
        return min(self.max_interval, max(self.min_interval, wait))

    def _plan(self) -> None:
        """Set the first look of jobs near the front to when the queue model says they can be
        done at the earliest: a job starts no sooner than its submission, nor than the end of
        the `parallel`-th job before it (from the lower bounds of ended jobs, then from the
        model's own earliest ends)."""
        self._fit_parallel()
        latency, parallel = self.latency_low, self.parallel
        if parallel is not None and self._fit.usable:
            self._plan_fitted(parallel)
            return
        if latency is None or parallel is None or not self.model_helps:
            return
        done = len(self._finished)
        planned: list[float] = []
        for index, tracked in enumerate(self._jobs[: 4 * parallel + self.max_window]):
            start = tracked.submitted
            before = done + index - parallel  # the job whose end frees a worker for this one
            if before >= done:
                start = max(start, planned[index - parallel])
            elif before >= 0:
                start = max(start, self._finished[before])
            planned.append(start + latency)
            tracked.expected = planned[-1]
            if tracked.polls == 0 and not tracked.ask_now and tracked.row_id not in self._in_flight:
                # a twentieth of a latency later: the earliest is reached only when every
                # bound is exact, and a look a hair early costs a second one
                tracked.due = max(tracked.not_before, tracked.expected + 0.05 * latency)
        if len(self._finished) > 4096:  # only the latest ends are ever looked up
            del self._finished[: len(self._finished) - 4096]

    def _plan_fitted(self, parallel: int) -> None:
        """Looks when one latency fits every answer so far (`LatencyFit`): at the latest the
        job can end, once the fit is tight enough that this is barely late; before that, a
        first look halfway between its earliest and latest end (the answer halves the range).
        The timetable already keeps the server's order: no job waits for an older one's look."""
        fit = self._fit
        for tracked in self._jobs[: 4 * parallel + self.max_window]:
            if tracked.ask_now or tracked.row_id in self._in_flight:
                continue
            tracked.expected = fit.end(tracked.queued, fit.low)
            spread = fit.depth(tracked.queued) * (fit.high - fit.low)
            halve = tracked.polls == 0 and spread > _TIGHT
            latency = (fit.low + fit.high) / 2 if halve else fit.high
            tracked.not_before = 0.0
            tracked.due = fit.end(tracked.queued, latency) + _slack(fit, tracked)

    def _end_round(self) -> None:
        # A waiting job's count of the jobs ahead, taken once the round is over (older jobs it
        # found done no longer count). When the oldest job still runs, jobs newer than it
        # cannot have ended (a server that keeps order). Otherwise others ahead may have ended
        # unseen, and the count is only a bound (see `_counted_parallel`).
        running = not self._round_head[1]
        latency = self.latency_low
        for tracked in self._round_waiting:
            if tracked.row_id in self._by_row:
                index = self._jobs.index(tracked)
                # Not swollen by jobs that ended unseen: the oldest job still ran, or every
                # job ahead was asked in this round or cannot have ended yet.
                clean = running or (
                    latency is not None
                    and all(
                        job.row_id in self._round_asked or job.submitted + latency > self._round_at
                        for job in self._jobs[:index]
                    )
                )
                # And the job just ahead was found running: the boundary between running and
                # waiting jobs is here, the count is the parallelism.
                adjacent = clean and (
                    index == 0 or self._jobs[index - 1].row_id in self._round_running
                )
                self._pending_ahead.append([tracked.queued, index, clean, adjacent])
        self._round_waiting = []
        self._round_running = set()
        kind, not_done = self._round_kind, self._round_not_done
        if kind == "probe":
            self._sweep_next = not_done == 0
        elif kind == "sweep":
            self._sweep_next = False
            if not_done == 0:
                self.window = min(self.max_window, self.window * 2)
        if not_done and kind in ("probe", "sweep"):
            if self._streak:
                self.window = max(self.min_window, min(self.max_window, self._streak))
            self._streak = 0
        self._round_kind = ""


def _last_seen(tracked: TrackedJob, default: float) -> float:
    """When the job was last asked about, or came near the front (it could not run before)."""
    front = tracked.front_since if tracked.front_since is not None else default
    return max(front, tracked.last_asked) if tracked.last_asked is not None else front
