"""What callers ask of a running `Runner`: hold or drain its submissions, resume after a pause,
add, cancel and retry work, wait for a batch, and how it is doing. The runner's loop and its
moves are in runner.py; `Runner` inherits these."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from mirrago.ledger import ACTIVE_STATES, JobInput, JobRecord, JobState, LedgerUnavailableError
from mirrago.ledger.durations import DurationHistory

if TYPE_CHECKING:
    from mirrago.client import MirragoClient
    from mirrago.ledger import Ledger
    from mirrago.ledger.retry import LedgerRetry
    from mirrago.pacing import SubmitPacer
    from mirrago.schedule import PollSchedule
    from mirrago.triage.worker import TriageWorker

ProgressCallback = Callable[[dict[JobState, int]], None]


class RunnerCalls:
    """The caller-facing part of `Runner` (which sets every attribute named here), and its
    ledger-side helpers: the background checker and the backend's job durations."""

    ledger: Ledger
    backend: str
    paused: bool
    last_error: Any
    running: bool
    _scope: set[int] | None
    _holding: threading.Event
    _wake: threading.Event
    _stopping: threading.Event
    _changed: threading.Condition
    _generation: int
    _inbox: deque[Any]
    _submits: set[Future[Any]]
    _polls: set[Future[Any]]
    _downloads: set[Future[Any]]
    _force_recovery: bool
    _retry: LedgerRetry
    _schedule: PollSchedule
    _pacer: SubmitPacer
    client: MirragoClient
    _lock: threading.RLock
    _triage: TriageWorker | None

    def _wake_for_queue(self) -> None:
        raise NotImplementedError

    def _notify_changed(self) -> None:
        raise NotImplementedError

    def hold(self) -> None:
        """Stop starting submissions (Ctrl-C in the CLI); polling and downloads go on."""
        self._holding.set()
        self._wake.set()

    def drain(self, timeout: float | None = None) -> bool:
        """Stop starting submissions (as `hold`) and wait until every submission in flight has
        been answered and its answer recorded, up to `timeout` seconds (None: as long as it
        takes). True when none is left in flight. Polling and downloads go on."""
        self.hold()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.in_flight() and self.running:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            with self._changed:
                self._changed.wait(0.1 if remaining is None else min(0.1, remaining))
        return self.in_flight() == 0

    @property
    def triage(self) -> TriageWorker:
        """The checker of stored results (`mirrago.triage.worker`), on a thread of its own: the
        runner hands it each stored result; it checks them while the runner rests."""
        from mirrago.triage.worker import TriageWorker

        with self._lock:
            if self._triage is None:
                busy = lambda: not self.idle()  # noqa: E731
                self._triage = TriageWorker(self.ledger, self.client.base_url, busy=busy)
            return self._triage

    # The backend's job durations, kept in the ledger: the poll schedule's history.
    def _duration_history(self) -> DurationHistory:
        try:  # without it: the schedule as with no history
            return self.ledger.duration_history(self.backend)
        except LedgerUnavailableError:
            return DurationHistory([], None)

    def _save_durations(self) -> None:  # lost when the ledger is down: only a history
        samples = self._schedule.new_samples()
        self.ledger.record_durations(self.backend, samples, self._schedule.parallel)

    def in_flight(self) -> int:
        """Submissions whose answer has not been recorded yet."""
        return len([f for f in list(self._submits) if not f.done()])

    def idle(self) -> bool:
        """Nothing left to do for its backend: no call in flight, no answer waiting for the
        ledger, and no queued, submitting or in-progress row of its backend in the ledger.
        False while the ledger cannot be read (it may hold such rows)."""
        calls = (*self._submits, *self._polls, *self._downloads)
        if self._inbox or any(not future.done() for future in calls):
            return False
        try:
            return not self.ledger.unfinished_by_backend().get(self.backend, 0)
        except Exception:  # noqa: BLE001 - unknown is not idle
            return False

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

    def enqueue(self, inputs: Sequence[JobInput], *, name: str, source: str) -> list[JobRecord]:
        """Record a new batch for this runner's backend (committed), wake the worker to submit
        it, and return its rows (queued, in input order; `rows[0].batch_id` is the batch). A
        runner limited to some batches makes it private: only runners that name it work on it."""
        private = self._scope is not None
        batch = self.ledger.create_batch(
            name, source, inputs, backend=self.backend, private=private
        )
        if self._scope is not None:
            self._scope = self._scope | {batch.id}
        self._wake_for_queue()
        self._notify_changed()
        return self.ledger.jobs(batch_id=batch.id)

    def cancel(self, row_id: int) -> bool:
        """Cancel a queued row; False when it is already being submitted or done."""
        done = self.ledger.cancel(row_id)
        self._notify_changed()
        return done

    def retry(self, row_id: int) -> bool:
        """Submit a failed or uncertain row again as a new attempt (recorded in the ledger)."""
        done = self.ledger.retry(row_id, backend=self.backend)
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
            try:
                counts = self.ledger.counts(batch_id)
            except LedgerUnavailableError as error:
                # Wait it out (the runner does too); without any reading yet, say so at the end.
                self._retry.failed(error)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    if last is None:
                        raise
                    return last
                self._stopping.wait(0.5 if remaining is None else min(0.5, remaining))
                continue
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

    @property
    def ledger_problem(self) -> str | None:
        """Why the ledger cannot be reached, while it cannot (None when it answers)."""
        return self._retry.problem

    @property
    def submit_rate(self) -> float | None:
        pacer = getattr(self, "_pacer", None)
        return None if pacer is None or pacer.unpaced else pacer.rate
