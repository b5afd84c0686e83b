"""Moves jobs through their life: claim, submit, poll, fetch the result, record — for every job.

One background thread per `Runner` drives everything; the network calls run in small thread
pools, and every outcome is written to the ledger before anything that depends on it:

    queued --claim, committed--> submitting --answer--> submitted --polled: done--> completed
    submitting --refused (400, 401, 402, bad image)--> failed      submitted --> failed
    submitting --rate limited, or never sent--> queued again
    submitting --outcome unknown (timeout after sending, plain 5xx)--> uncertain

- Submissions run in parallel (a bounded pool) under a `SubmitPacer`: a rate that starts
  moderate and doubles while the server accepts; a rate limit pauses for Retry-After and cuts
  the rate (multiplicatively: to just under what the server measurably admitted, else by
  half), which then recovers slowly (additive-increase, multiplicative-decrease).
- Polling is one `PollSchedule` over every job in progress, with a next-poll time per job.
  The server works its queue roughly in order, so the oldest job in progress is probed and,
  while it is not done, newer jobs are not asked about; when it is done, the next ones are
  swept in parallel. The first look at a job is one latency after its submission.
- Results are downloaded into `data_dir/results/<job_id>.<ext>` with a thumbnail (≤ 320 px)
  in `data_dir/thumbs/`; a result that cannot be fetched still completes the row, with a note.
- A 401 or 402 pauses submitting (the rest stays queued) and sets `last_error`.
- On start, and every few seconds, rows of runners that are gone are cleaned up: their
  `submitting` rows become `uncertain` (never resubmitted by themselves), their `submitted`
  rows are adopted and polled.

The runner does its own retrying (polls are rescheduled, downloads retried), so it works best
with a client built with `max_retries=0` (as `open_services` does): then it sees every rate-limit
answer and can adapt to it. Worker threads never touch Streamlit.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mirrago.ledger import HOST, BatchRecord, JobInput, JobRecord, JobState, Ledger
from mirrago.models import (
    AuthenticationError,
    BadRequestError,
    ConnectionError,
    ImageError,
    InsufficientCreditsError,
    Job,
    JobStatus,
    MirragoError,
    RateLimitError,
    ServerError,
    Submission,
    SubmissionUncertainError,
    TimeoutError,
)

log = logging.getLogger("mirrago.runner")

ProgressCallback = Callable[[dict[JobState, int]], None]
ACTIVE_STATES = (JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED)


@dataclass
class RunnerTuning:
    """Knobs of a `Runner` (pass them as keyword arguments). The defaults suit the live API."""

    submit_workers: int = 8  # submissions in flight at most
    poll_workers: int = 8  # status requests in flight at most
    download_workers: int = 8
    initial_submit_rate: float = 40.0  # submits per second to start with (doubles while fine)
    max_submit_rate: float | None = None  # never faster than this; None: no cap
    first_poll_delay: float = 0.5  # first look at a job, until the service's latency is known
    min_poll_interval: float = 0.05
    max_poll_interval: float = 5.0
    heartbeat_interval: float = 2.0
    stale_after: float = 15.0  # a runner silent this long is considered gone
    recovery_interval: float = 5.0
    rescan_interval: float = 1.0  # look for rows queued by other processes this often
    download_attempts: int = 4
    max_transient_failures: int = 6  # consecutive unreachable-server submits before pausing
    batch_ids: Collection[int] | None = None  # only these batches (None: all but private ones)


# --------------------------------------------------------------------------- submit pacing


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


# --------------------------------------------------------------------------- poll scheduling


@dataclass
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

    @property
    def order(self) -> tuple[float, int]:
        return (self.submitted, self.seq)


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
    """

    def __init__(
        self,
        *,
        first_delay: float = 0.5,
        min_interval: float = 0.05,
        max_interval: float = 5.0,
        min_window: int = 4,
        max_window: int = 64,
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
        self._samples: deque[float] = deque(maxlen=500)
        self._seq = itertools.count()
        self._sweep_next = False
        self._round_kind = ""
        self._round_not_done = 0
        self._streak = 0

    # ---- membership

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, row_id: object) -> bool:
        return row_id in self._by_row

    @property
    def latency(self) -> float | None:
        """The service's latency as seen: the fastest recent submission-to-done time."""
        return min(self._samples) if self._samples else None

    def add(
        self,
        row_id: int,
        job_id: str,
        submitted: float,
        now: float,
        *,
        raw_status: str | None = None,
        ask_now: bool = False,
    ) -> TrackedJob:
        if row_id in self._by_row:
            return self._by_row[row_id]
        delay = self.latency if self.latency is not None else self.first_delay
        tracked = TrackedJob(
            row_id=row_id,
            job_id=job_id,
            submitted=submitted,
            seq=next(self._seq),
            due=now if ask_now else max(now, submitted + delay),
            raw_status=raw_status,
            added=now,
        )
        bisect.insort(self._jobs, tracked, key=lambda job: job.order)
        self._by_row[row_id] = tracked
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
        else:
            chosen, kind = self._overdue(now), "guard"
        if chosen:
            self._round_kind = kind
            self._round_not_done = 0
            for tracked in chosen:
                self._in_flight[tracked.row_id] = tracked
        return chosen

    def _max_gap(self) -> float:
        latency = self.latency or self.first_delay
        return min(self.max_interval * 4, max(3.0, 3.0 * latency))

    def _overdue(self, now: float) -> list[TrackedJob]:
        gap = self._max_gap()
        return [t for t in self._jobs[: self.window] if _last_seen(t, now) + gap <= now]

    def next_wakeup(self) -> float | None:
        """When `take_due` may next have something (None: nothing tracked or a round is out)."""
        if self._in_flight or not self._jobs:
            return None
        head_due = self._jobs[0].due
        gap = self._max_gap()
        guard = min(_last_seen(t, head_due) + gap for t in self._jobs[: self.window])
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
        if done:
            # it finished between the previous look and this one: count from the middle
            finished = now if previous is None else (previous + now) / 2
            self._samples.append(max(0.0, finished - tracked.submitted))
            self._streak += 1
            self._by_row.pop(row_id, None)
            self._jobs.remove(tracked)
        else:
            self._round_not_done += 1
            tracked.due = now + self._interval(tracked, now)
            index = bisect.bisect_right(self._jobs, tracked.order, key=lambda job: job.order)
            for newer in self._jobs[index:]:
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
            backoff = min(self.max_interval, 0.2 * 2 ** min(tracked.errors - 1, 6))
            tracked.due = now + backoff
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

    def _end_round(self) -> None:
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


# --------------------------------------------------------------------------- the runner


@dataclass
class RunnerStats:
    """What the runner did, for benchmarks and diagnostics."""

    submissions: int = 0  # POSTs answered with a job
    rate_limited: int = 0
    polls: int = 0  # GETs of job status, answered or not
    poll_errors: int = 0
    downloads: int = 0
    download_failures: int = 0


@dataclass
class _Outcome:
    """A worker's report to the driver thread."""

    kind: str
    row_id: int | None = None
    job: Job | None = None
    submission: Submission | None = None
    error: MirragoError | None = None
    launched_at: float = 0.0
    submitted_at: float = 0.0
    epoch: int = 0


class Runner:
    """Moves the ledger's jobs through their life (see the module docstring). Thread-safe."""

    def __init__(self, ledger: Ledger, client: Any, data_dir: Path, **tuning: Any) -> None:
        known = {f.name for f in fields(RunnerTuning)}
        unknown = set(tuning) - known
        if unknown:
            raise TypeError(f"unknown runner tuning: {', '.join(sorted(unknown))}")
        self.tuning = RunnerTuning(**tuning)
        self.ledger = ledger
        self.client = client
        self.data_dir = Path(data_dir)
        self.results_dir = self.data_dir / "results"
        self.thumbs_dir = self.data_dir / "thumbs"
        self.stats = RunnerStats()
        self.last_error: MirragoError | None = None
        self.paused = False
        self.runner_id = ""
        scope = self.tuning.batch_ids
        self._scope: set[int] | None = None if scope is None else set(scope)
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._holding = threading.Event()  # stop submitting (Ctrl-C), keep the rest going
        self._changed = threading.Condition()
        self._generation = 0
        self._inbox: deque[_Outcome] = deque()
        self._submits: set[Future[Any]] = set()
        self._polls: set[Future[Any]] = set()
        self._downloads: set[Future[Any]] = set()
        self._force_recovery = False
        self._queue_empty = False
        self._queue_epoch = 0  # bumped whenever rows may have been queued
        self._transient = 0  # consecutive submissions that could not reach the server
        self._stats_lock = threading.Lock()

    # ------------------------------------------------------------------ public API

    def start(self) -> None:
        """Start the background worker (once; later calls do nothing while it runs)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._holding.clear()
            self.runner_id = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            self.ledger.register_runner(self.runner_id)
            tuning = self.tuning
            self._pacer = SubmitPacer(tuning.initial_submit_rate, tuning.max_submit_rate)
            self._schedule = PollSchedule(
                first_delay=tuning.first_poll_delay,
                min_interval=tuning.min_poll_interval,
                max_interval=tuning.max_poll_interval,
            )
            self._submit_pool = ThreadPoolExecutor(tuning.submit_workers, "mirrago-submit")
            self._poll_pool = ThreadPoolExecutor(tuning.poll_workers, "mirrago-poll")
            self._download_pool = ThreadPoolExecutor(tuning.download_workers, "mirrago-fetch")
            self._thread = threading.Thread(target=self._drive, name="mirrago-runner", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopping.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop submitting and polling; wait up to `timeout` s for calls in flight to return and
        be recorded. Jobs still in progress stay `submitted`: the next runner polls them."""
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            self._stopping.set()
            self._wake.set()
            thread.join(timeout)
            deadline = time.monotonic() + max(0.0, timeout)
            for pool in (self._submit_pool, self._poll_pool, self._download_pool):
                pool.shutdown(wait=False, cancel_futures=True)
            for futures in (self._submits, self._polls, self._downloads):
                for future in list(futures):
                    try:
                        future.exception(timeout=max(0.0, deadline - time.monotonic()))
                    except Exception:  # noqa: BLE001 - cancelled or still running: give up
                        pass
            try:
                self.ledger.unregister_runner(self.runner_id)
            except Exception as error:  # noqa: BLE001 - the database may be the problem
                log.warning("could not unregister runner %s: %s", self.runner_id, error)
            self._thread = None
            self._notify_changed()

    def hold(self) -> None:
        """Stop starting submissions (Ctrl-C in the CLI); polling and downloads go on."""
        self._holding.set()
        self._wake.set()

    def in_flight(self) -> int:
        """Submissions whose answer has not been recorded yet."""
        return len([f for f in list(self._submits) if not f.done()])

    def resume(self) -> None:
        """Submit again after a pause (an authentication or credit problem was fixed)."""
        self.paused = False
        self.last_error = None
        self._holding.clear()
        self._wake.set()

    def add_batch(self, batch_id: int) -> None:
        """Work on this batch too (a runner limited to some batches; no-op otherwise)."""
        if self._scope is not None:
            self._scope = self._scope | {batch_id}  # replaced, not mutated: the worker reads it
        self._force_recovery = True
        self._wake.set()

    def enqueue(self, inputs: Sequence[JobInput], *, name: str, source: str) -> BatchRecord:
        """Record a new batch (committed) and wake the worker to submit it. A runner limited
        to some batches makes it private: only runners that name it will work on it."""
        private = self._scope is not None
        batch = self.ledger.create_batch(name, source, inputs, private=private)
        if self._scope is not None:
            self._scope = self._scope | {batch.id}
        self._wake_for_queue()
        self._notify_changed()
        return batch

    def cancel(self, row_id: int) -> bool:
        """Cancel a queued row; False when it is already being submitted or done."""
        done = self.ledger.cancel(row_id)
        self._notify_changed()
        return done

    def retry(self, row_id: int) -> bool:
        """Submit a failed or uncertain row again as a new attempt (recorded in the ledger)."""
        done = self.ledger.retry(row_id)
        if done:
            self._wake_for_queue()
        self._notify_changed()
        return done

    def wait(
        self,
        batch_id: int,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[JobState, int]:
        """Wait until every row of the batch is final and return the counts by state.

        Also returns early, with rows still active, when `timeout` passes, when the runner is
        paused (see `last_error`) or held with nothing left in flight for it, or when it is
        not running. `on_progress(counts)` is called whenever the counts change.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last: dict[JobState, int] | None = None
        while True:
            with self._changed:
                generation = self._generation
            counts = self.ledger.counts(batch_id)
            if counts != last:
                last = counts
                if on_progress is not None:
                    on_progress(counts)
            active = sum(counts[state] for state in ACTIVE_STATES)
            if active == 0 or self._stuck(counts):
                return counts
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return counts
            with self._changed:
                if self._generation == generation:
                    self._changed.wait(0.5 if remaining is None else min(0.5, remaining))

    def _stuck(self, counts: dict[JobState, int]) -> bool:
        if not self.running:
            return True
        only_queued = counts[JobState.SUBMITTING] == 0 and counts[JobState.SUBMITTED] == 0
        return only_queued and (self.paused or self._holding.is_set())

    def __enter__(self) -> Runner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Runner({self.ledger!r}, running={self.running})"

    # ------------------------------------------------------------------ the driver thread

    def _drive(self) -> None:
        now = time.monotonic()
        next_heartbeat = now + self.tuning.heartbeat_interval
        next_recovery = now
        next_rescan = now
        while not self._stopping.is_set():
            try:
                now = time.monotonic()
                if now >= next_heartbeat:
                    self.ledger.heartbeat(self.runner_id)
                    next_heartbeat = now + self.tuning.heartbeat_interval
                if now >= next_recovery or self._force_recovery:
                    self._force_recovery = False
                    self._recover(now)
                    next_recovery = now + self.tuning.recovery_interval
                if self._queue_empty and now >= next_rescan:
                    if self.ledger.has_queued(self._scope_list()):
                        self._wake_for_queue()
                    next_rescan = now + self.tuning.rescan_interval
                self._drain_inbox()
                wakeups = [next_heartbeat, next_recovery]
                if self._queue_empty:
                    wakeups.append(next_rescan)
                wakeups += self._launch_submits(time.monotonic())
                wakeups += self._launch_polls(time.monotonic())
            except Exception as error:  # noqa: BLE001 - keep the worker alive (a database blip)
                log.exception("runner loop error")
                self._set_error(error)
                wakeups = [time.monotonic() + 1.0]
            delay = min(wakeups) - time.monotonic()
            if delay > 0 and not self._inbox:
                self._wake.wait(min(delay, 1.0))
            self._wake.clear()
        # Let the answers that arrived in the meantime reach the ledger's in-memory mirror.
        self._drain_inbox()

    def _scope_list(self) -> list[int] | None:
        scope = self._scope
        return None if scope is None else list(scope)

    def _recover(self, now: float) -> None:
        recovery = self.ledger.recover(
            self.runner_id, stale_after=self.tuning.stale_after, batch_ids=self._scope_list()
        )
        if recovery.uncertain:
            log.info("marked %d orphaned submission(s) uncertain", len(recovery.uncertain))
            self._notify_changed()
        # Rows adopted now, and rows already ours (after a restart of this runner object).
        for row in recovery.adopted:
            self._track(row, now, ask_now=True)

    def _track(self, row: JobRecord, now: float, *, ask_now: bool = False) -> None:
        if row.job_id is None or row.id in self._schedule:
            return
        submitted = now
        if row.submitted_at is not None:
            age = max(0.0, time.time() - row.submitted_at.timestamp())
            submitted = now - age
        self._schedule.add(
            row.id, row.job_id, submitted, now, raw_status=row.server_status, ask_now=ask_now
        )

    def _wake_for_queue(self) -> None:
        self._queue_epoch += 1
        self._queue_empty = False
        self._wake.set()

    # ---- submissions

    def _launch_submits(self, now: float) -> list[float]:
        self._submits = {f for f in self._submits if not f.done()}
        # A finished submission reported its answer before its slot freed: handle those answers
        # before reusing the slots, so a 401 or 402 pauses before another submission starts.
        self._drain_inbox()
        if self.paused or self._holding.is_set() or self._stopping.is_set() or self._queue_empty:
            return []
        pacer = self._pacer
        while len(self._submits) < self.tuning.submit_workers:
            when = pacer.next_launch(now)
            if when > now:
                return [when]
            pacer.launched(now)
            self._submits.add(self._submit_pool.submit(self._submit_one, now, self._queue_epoch))
        return []

    def _submit_one(self, launched_at: float, epoch: int) -> None:
        outcome = _Outcome("empty", launched_at=launched_at, epoch=epoch)
        try:
            row = self.ledger.claim_next(self.runner_id, self._scope_list())
            if row is not None:
                outcome = self._submit_row(row, launched_at)
        except Exception as error:  # noqa: BLE001 - a database error: report, do not die
            log.exception("submission worker error")
            outcome = _Outcome("error", error=_as_mirrago_error(error), launched_at=launched_at)
        self._report(outcome)

    def _submit_row(self, row: JobRecord, launched_at: float) -> _Outcome:
        me = self.runner_id
        try:
            target = self._prepared(row.target, "person")
            garment = self._prepared(row.garment, "garment")
        except Exception as error:  # noqa: BLE001 - nothing was sent: the row failed
            message = error.message if isinstance(error, MirragoError) else repr(error)
            self.ledger.fail_submission(row.id, me, message)
            return _Outcome("refused", row.id, launched_at=launched_at)
        try:
            submission = self.client.generate(
                target, garment, background=row.background, username=row.username
            )
        except RateLimitError as error:
            self.ledger.release(row.id, me)
            return _Outcome("rate_limited", row.id, error=error, launched_at=launched_at)
        except (ConnectionError, TimeoutError) as error:
            # generate raises these only when the request never reached the server
            self.ledger.release(row.id, me)
            return _Outcome("unreachable", row.id, error=error, launched_at=launched_at)
        except (AuthenticationError, InsufficientCreditsError) as error:
            # Paused before the row is marked: whoever sees the row failed sees why.
            self._set_error(error, pause=True)
            self.ledger.fail_submission(row.id, me, error.message)
            return _Outcome("blocked", row.id, error=error, launched_at=launched_at)
        except (BadRequestError, ImageError) as error:
            self.ledger.fail_submission(row.id, me, error.message)
            return _Outcome("refused", row.id, error=error, launched_at=launched_at)
        except SubmissionUncertainError as error:
            self.ledger.mark_uncertain(row.id, me, error.message)
            return _Outcome("uncertain", row.id, error=error, launched_at=launched_at)
        except (ServerError, MirragoError) as error:
            self.ledger.mark_uncertain(row.id, me, _uncertain_text(error.message))
            return _Outcome("uncertain", row.id, error=error, launched_at=launched_at)
        except Exception as error:  # noqa: BLE001 - unknown: the POST may have been sent
            log.exception("unexpected error submitting row %s", row.id)
            self.ledger.mark_uncertain(row.id, me, _uncertain_text(f"{type(error).__name__}"))
            return _Outcome("uncertain", row.id, launched_at=launched_at)
        answered = time.monotonic()
        self._record(lambda: self.ledger.record_submission(row.id, me, submission))
        return _Outcome(
            "submitted",
            row.id,
            submission=submission,
            launched_at=launched_at,
            submitted_at=answered,
        )

    @staticmethod
    def _prepared(value: str, role: str) -> Any:
        """A local image is prepared (oriented, capped, re-encoded) before upload; a URL is
        passed as is, for the server to fetch."""
        text = value.strip()
        if "://" in text:
            return text
        path = Path(text).expanduser()
        try:
            data = path.read_bytes()
        except OSError:
            return text  # let the client word the error about the path
        from mirrago.images import prepare_image

        return prepare_image(data, role=role).data

    # ---- polls

    def _launch_polls(self, now: float) -> list[float]:
        self._polls = {f for f in self._polls if not f.done()}
        if self._stopping.is_set():
            return []
        for tracked in self._schedule.take_due(now):
            self._count("polls")
            self._polls.add(
                self._poll_pool.submit(
                    self._poll_one, tracked.row_id, tracked.job_id, tracked.raw_status
                )
            )
        wakeup = self._schedule.next_wakeup()
        return [] if wakeup is None else [wakeup]

    def _poll_one(self, row_id: int, job_id: str, previous_status: str | None) -> None:
        me = self.runner_id
        try:
            job = self.client.job(job_id)
        except BadRequestError as error:
            if error.status_code in (404, 410):
                self.ledger.fail_job(
                    row_id,
                    me,
                    f"The server no longer knows job {job_id} ({error.status_code}): "
                    f"{error.message}",
                )
                self._report(_Outcome("gone", row_id, error=error))
                return
            self._report(_Outcome("poll_error", row_id, error=error))
            return
        except MirragoError as error:
            self._report(_Outcome("poll_error", row_id, error=error))
            return
        except Exception as error:  # noqa: BLE001
            log.exception("unexpected error polling job %s", job_id)
            self._report(_Outcome("poll_error", row_id, error=_as_mirrago_error(error)))
            return
        try:
            if job.status is JobStatus.FAILED:
                message = job.error_message or "The server reported the job failed, with no reason."
                self._record(lambda: self.ledger.fail_job(row_id, me, message, job.raw_status))
            elif job.raw_status != previous_status or job.status is JobStatus.COMPLETED:
                self._record(
                    lambda: self.ledger.update_server_status(
                        row_id,
                        me,
                        job.raw_status,
                        cloth_id=job.cloth_id,
                        result_url=job.result_url,
                    )
                )
        except Exception as error:  # noqa: BLE001
            log.exception("could not record job %s", job_id)
            self._report(_Outcome("poll_error", row_id, error=_as_mirrago_error(error)))
            return
        self._report(_Outcome("polled", row_id, job=job))

    # ---- results

    def _fetch_result(self, row_id: int, job: Job) -> None:
        me = self.runner_id
        note = None
        result_path = thumb_path = None
        try:
            if not job.result_url:
                note = "The server reported the job completed but gave no result URL."
            else:
                data, note = self._download(job.result_url)
                if data is not None:
                    result_path, thumb_path, note = self._store_result(job.job_id, data)
            self._record(
                lambda: self.ledger.complete(
                    row_id,
                    me,
                    server_status=job.raw_status,
                    result_url=job.result_url,
                    result_path=result_path,
                    thumbnail_path=thumb_path,
                    error=note,
                )
            )
        except Exception:  # noqa: BLE001 - leave the row submitted: the next poll retries
            log.exception("could not record the result of job %s", job.job_id)
            self._report(_Outcome("fetch_error", row_id))
            return
        self._report(_Outcome("fetched", row_id))

    def _download(self, url: str) -> tuple[bytes | None, str | None]:
        attempts = max(1, self.tuning.download_attempts)
        problem = ""
        for attempt in range(attempts):
            try:
                data = self.client.download(url)
                self._count("downloads")
                return data, None
            except (ImageError, BadRequestError) as error:  # not worth retrying
                problem = error.message
                break
            except MirragoError as error:
                problem = error.message
                delay = 0.5 * 2**attempt
                if isinstance(error, RateLimitError) and error.retry_after:
                    delay = max(delay, min(error.retry_after, 30.0))
                if attempt + 1 < attempts and self._stopping.wait(delay):
                    break
        self._count("download_failures")
        return None, f"The result could not be downloaded: {problem}"

    def _store_result(self, job_id: str, data: bytes) -> tuple[str, str | None, str | None]:
        self.results_dir.mkdir(parents=True, exist_ok=True)
        result = self.results_dir / f"{_safe_name(job_id)}.{_image_ext(data)}"
        _write_atomic(result, data)
        try:
            from mirrago.images import make_thumbnail

            thumb = self.thumbs_dir / f"{_safe_name(job_id)}.jpg"
            self.thumbs_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(thumb, make_thumbnail(data, max_side=320))
        except Exception as error:  # noqa: BLE001 - the result itself is safe; note it
            return str(result), None, f"The thumbnail could not be made: {error}"
        return str(result), str(thumb), None

    # ---- the driver's handling of outcomes

    def _report(self, outcome: _Outcome) -> None:
        self._inbox.append(outcome)
        self._wake.set()
        self._notify_changed()

    def _drain_inbox(self) -> None:
        while self._inbox:
            self._handle(self._inbox.popleft())

    def _handle(self, outcome: _Outcome) -> None:
        now = time.monotonic()
        kind = outcome.kind
        pacer, schedule = self._pacer, self._schedule
        if kind == "empty":
            # unless rows were queued since this claim was tried
            self._queue_empty = outcome.epoch == self._queue_epoch
        elif kind == "submitted":
            assert outcome.submission is not None and outcome.row_id is not None
            pacer.admitted(now, outcome.launched_at)
            self._count("submissions")
            self._transient = 0
            if self.last_error is not None and not self.paused:
                self.last_error = None
            schedule.add(
                outcome.row_id,
                outcome.submission.job_id,
                outcome.submitted_at,
                now,
                raw_status=outcome.submission.raw_status,
            )
        elif kind == "rate_limited":
            error = outcome.error
            retry_after = error.retry_after if isinstance(error, RateLimitError) else None
            pacer.limited(now, outcome.launched_at, retry_after)
            self._count("rate_limited")
        elif kind in ("refused", "uncertain"):
            pacer.admitted(now, outcome.launched_at)
        elif kind == "blocked":
            pass  # already paused by the worker
        elif kind in ("unreachable", "error"):
            self._transient += 1
            pacer.paused_until = max(pacer.paused_until, now + min(30.0, 0.5 * 2**self._transient))
            self._set_error(
                outcome.error, pause=self._transient >= self.tuning.max_transient_failures
            )
        elif kind == "polled":
            assert outcome.job is not None and outcome.row_id is not None
            job = outcome.job
            schedule.answered(
                outcome.row_id, now, done=job.status.is_final, raw_status=job.raw_status
            )
            if job.status is JobStatus.COMPLETED:
                self._downloads.add(
                    self._download_pool.submit(self._fetch_result, outcome.row_id, job)
                )
                self._downloads = {f for f in self._downloads if not f.done()}
        elif kind == "poll_error":
            assert outcome.row_id is not None
            self._count("poll_errors")
            error = outcome.error
            retry_after = None
            if isinstance(error, RateLimitError):
                retry_after = error.retry_after or 1.0
            if isinstance(error, AuthenticationError):
                self._set_error(error)
            schedule.unanswered(outcome.row_id, now, retry_after=retry_after)
        elif kind == "gone":
            assert outcome.row_id is not None
            schedule.answered(outcome.row_id, now, done=True, raw_status=None)
        elif kind == "fetch_error":
            assert outcome.row_id is not None
            row = self.ledger.job(outcome.row_id)
            if row is not None and row.state is JobState.SUBMITTED:
                self._track(row, now, ask_now=False)

    def _set_error(self, error: BaseException | None, *, pause: bool = False) -> None:
        if error is not None:
            self.last_error = _as_mirrago_error(error)
        if pause:
            self.paused = True
        self._notify_changed()

    def _record(self, write: Callable[[], Any]) -> Any:
        """A ledger write after a network answer: retried briefly, since losing it would lose
        a job id (the database may be momentarily locked or unreachable)."""
        for attempt in range(5):
            try:
                result = write()
                self._notify_changed()
                return result
            except Exception:
                if attempt == 4:
                    raise
                time.sleep(0.2 * 2**attempt)
        return None

    def _count(self, name: str) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def _notify_changed(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    @property
    def submit_rate(self) -> float | None:
        pacer = getattr(self, "_pacer", None)
        return None if pacer is None or pacer.unpaced else pacer.rate

    @property
    def poll_latency(self) -> float | None:
        schedule = getattr(self, "_schedule", None)
        return None if schedule is None else schedule.latency


def _as_mirrago_error(error: BaseException) -> MirragoError:
    if isinstance(error, MirragoError):
        return error
    return MirragoError(f"Unexpected {type(error).__name__}: {error}")


def _uncertain_text(reason: str) -> str:
    return f"The server may or may not have created this job (it may have spent a credit): {reason}"


def _image_ext(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return "bin"


def _safe_name(job_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in job_id)[:128] or "job"


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
