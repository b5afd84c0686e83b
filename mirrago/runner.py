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
  swept in parallel. The first look at a job is when it can be done at the earliest (the
  backend's job durations, kept in the ledger, and its "pending" answers say).
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

import logging
import os
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirrago.backend import backend_key
from mirrago.backoff import backoff
from mirrago.datadir import store_result
from mirrago.errors import (
    AuthenticationError,
    BadRequestError,
    ImageError,
    InsufficientCreditsError,
    MirragoError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ServiceConnectionError,
    SubmissionUncertainError,
    uncertain_text,
)
from mirrago.ledger import (
    HOST,
    JobRecord,
    JobState,
    Ledger,
    LedgerUnavailableError,
)
from mirrago.ledger.retry import LedgerRetry
from mirrago.models import Job, JobStatus
from mirrago.pacing import SubmitPacer
from mirrago.runnercalls import RunnerCalls
from mirrago.runstate import (
    Outcome,
    RunnerStats,
    RunnerTuning,
    WorkerReport,
    as_mirrago_error,
)
from mirrago.schedule import PollSchedule
from mirrago.transfer import download, prepared

if TYPE_CHECKING:
    from mirrago.client import MirragoClient
    from mirrago.triage.worker import TriageWorker

log = logging.getLogger("mirrago.runner")

# --------------------------------------------------------------------------- the runner


class Runner(RunnerCalls):
    """Moves the ledger's jobs through their life (see the module docstring). Thread-safe."""

    def __init__(
        self,
        ledger: Ledger,
        client: MirragoClient,
        data_dir: Path,
        tuning: RunnerTuning | None = None,
        *,
        backend: str | None = None,
        **overrides: Any,
    ) -> None:
        """`tuning` (default `RunnerTuning()`), with any of its fields overridden by keyword;
        `backend` is the key of the server `client` talks to (default: from its base URL and
        client id; `Backend.key` for the embedded sandbox)."""
        known = {f.name for f in fields(RunnerTuning)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown runner tuning: {', '.join(sorted(unknown))}")
        self.tuning = replace(tuning or RunnerTuning(), **overrides)
        self.ledger = ledger
        self.client = client
        # The rows this runner may touch: those queued for its server (see Ledger.recover).
        self.backend = backend or backend_key(client.base_url, client.client_id)
        self.data_dir = Path(data_dir)
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
        # Set once `stop` has waited its time: answers still unrecorded are then given up.
        self._abandon = threading.Event()
        self._registered = False
        # After an outage every runner's heartbeat looks old: judge others only once they have
        # had `stale_after` seconds to beat again.
        self._judge_after = 0.0
        # A claim whose answer was lost with the connection may have committed: once the
        # ledger is back and no submission is in flight, such rows are put back in the queue.
        self._reconcile_claims = False
        self._holding = threading.Event()  # stop submitting (Ctrl-C), keep the rest going
        self._changed = threading.Condition()
        self._generation = 0
        self._inbox: deque[WorkerReport] = deque()
        self._submits: set[Future[Any]] = set()
        self._polls: set[Future[Any]] = set()
        self._downloads: set[Future[Any]] = set()
        self._force_recovery = False
        self._queue_empty = False
        self._queue_epoch = 0  # bumped whenever rows may have been queued
        self._transient = 0  # consecutive submissions that could not reach the server
        self._stats_lock = threading.Lock()
        self._pause_lock = threading.Lock()
        self._retry = LedgerRetry(
            self._abandon, self._wake, self._notify_changed, on_back=self._ledger_back
        )
        self._triage: TriageWorker | None = None

    # ------------------------------------------------------------------ public API

    def start(self) -> None:
        """Start the background worker (once; later calls do nothing while it runs)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._abandon.clear()
            self._holding.clear()
            self._registered = False  # the driver registers (and retries while it cannot)
            self.runner_id = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            tuning = self.tuning
            self._pacer = SubmitPacer(tuning.initial_submit_rate, tuning.max_submit_rate)
            history = self._duration_history()  # a new run starts informed
            self._schedule = PollSchedule(
                first_delay=tuning.first_poll_delay,
                min_interval=tuning.min_poll_interval,
                max_interval=tuning.max_poll_interval,
                history=history.seconds,
                parallel=history.parallel,
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
            self._abandon.set()  # answers still waiting for the ledger are given up now
            if self._triage is not None:  # rows it had not reached: `mirrago triage` finds them
                self._triage.stop()
            self._triage = None
            try:
                self.ledger.unregister_runner(self.runner_id)
            except Exception as error:  # noqa: BLE001 - the database may be the problem
                log.warning("could not unregister runner %s: %s", self.runner_id, error)
            self._thread = None
            self._notify_changed()

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
        next_heartbeat = now
        next_recovery = now
        next_rescan = now
        while not self._stopping.is_set():
            try:
                now = time.monotonic()
                # The heartbeat (registration first) also probes a ledger that failed: nothing
                # is claimed until it answers again; polling goes on meanwhile.
                if now >= next_heartbeat:
                    beat = self.ledger.heartbeat if self._registered else self._register
                    if self._retry.step(beat, self.runner_id):
                        next_heartbeat = now + self.tuning.heartbeat_interval
                        self._retry.step(self._save_durations)
                    else:
                        next_heartbeat = now + self._retry.retry_delay()
                ledger_ok = self._registered and self._retry.problem is None
                if ledger_ok and self._reconcile_claims and not self.in_flight():
                    if self._retry.step(self._release_lost_claims):
                        self._reconcile_claims = False
                if (
                    ledger_ok
                    and now >= self._judge_after
                    and (now >= next_recovery or self._force_recovery)
                ):
                    if self._retry.step(self._recover, now):
                        self._force_recovery = False
                        next_recovery = now + self.tuning.recovery_interval
                if ledger_ok and self._queue_empty and now >= next_rescan:
                    if self._retry.step(self._rescan, self._scope_list(), self.backend):
                        next_rescan = now + self.tuning.rescan_interval
                self._drain_inbox()
                wakeups = [next_heartbeat, next_recovery]
                if self._queue_empty:
                    wakeups.append(next_rescan)
                wakeups += self._launch_submits(time.monotonic())
                wakeups += self._launch_polls(time.monotonic())
            except Exception as error:  # noqa: BLE001 - keep the worker alive (a bug's blip)
                log.exception("runner loop error")
                self._set_error(error)
                wakeups = [time.monotonic() + 1.0]
            delay = min(wakeups) - time.monotonic()
            if delay > 0 and not self._inbox:
                self._wake.wait(min(delay, 1.0))
            self._wake.clear()
        # Let the answers that arrived in the meantime reach the ledger's in-memory mirror.
        self._drain_inbox()
        self._retry.step(self._save_durations)

    def _register(self, runner_id: str) -> None:
        self.ledger.register_runner(runner_id)
        self._registered = True

    def _release_lost_claims(self) -> None:
        """Rows this runner claimed although the claim's answer never arrived: nothing was
        sent for them (no submission is in flight), so they go back to the queue."""
        for row in self.ledger.owned(self.runner_id, JobState.SUBMITTING):
            self.ledger.release(row.id, self.runner_id)
        self._wake_for_queue()

    def _rescan(self, scope: list[int] | None, backend: str) -> None:
        if self.ledger.has_queued(scope, backend=backend):
            self._wake_for_queue()

    def _scope_list(self) -> list[int] | None:
        scope = self._scope
        return None if scope is None else list(scope)

    def _recover(self, now: float) -> None:
        recovery = self.ledger.recover(
            self.runner_id,
            backend=self.backend,
            stale_after=self.tuning.stale_after,
            batch_ids=self._scope_list(),
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
        if self._retry.problem is not None or not self._registered or self._reconcile_claims:
            return []  # no new claims until the ledger answers (the heartbeat probes it)
        pacer = self._pacer
        while len(self._submits) < self.tuning.submit_workers:
            when = pacer.next_launch(now)
            if when > now:
                return [when]
            pacer.launched(now)
            self._submits.add(self._submit_pool.submit(self._submit_one, now, self._queue_epoch))
        return []

    def _submit_one(self, launched_at: float, epoch: int) -> None:
        outcome = WorkerReport(Outcome.EMPTY, launched_at=launched_at, epoch=epoch)
        try:
            row = self.ledger.claim_next(self.runner_id, self._scope_list(), backend=self.backend)
            self._retry.ok()
            if row is not None:
                outcome = self._submit_row(row, launched_at)
        except LedgerUnavailableError as error:  # the claim may or may not have committed
            self._reconcile_claims = True
            self._retry.failed(error)
            outcome = WorkerReport(Outcome.LEDGER_DOWN, launched_at=launched_at)
        except Exception as error:  # noqa: BLE001 - a bug: report, do not die
            log.exception("submission worker error")
            error = as_mirrago_error(error)
            outcome = WorkerReport(Outcome.ERROR, error=error, launched_at=launched_at)
        self._report(outcome)

    def _submit_row(self, row: JobRecord, launched_at: float) -> WorkerReport:
        me = self.runner_id
        try:
            target = prepared(row.target, "person")
            garment = prepared(row.garment, "garment")
        except Exception as error:  # noqa: BLE001 - nothing was sent: the row failed
            message = error.message if isinstance(error, MirragoError) else repr(error)
            self._retry.record(self.ledger.fail_submission, row.id, me, message)
            return WorkerReport(Outcome.REFUSED, row.id, launched_at=launched_at)
        try:
            submission = self.client.generate(
                target, garment, background=row.background, username=row.username
            )
        except RateLimitError as error:
            self._retry.record(self.ledger.release, row.id, me)
            return WorkerReport(Outcome.RATE_LIMITED, row.id, error=error, launched_at=launched_at)
        except ServiceConnectionError as error:  # timeouts included
            # generate raises these only when the request never reached the server
            self._retry.record(self.ledger.release, row.id, me)
            return WorkerReport(Outcome.UNREACHABLE, row.id, error=error, launched_at=launched_at)
        except (AuthenticationError, InsufficientCreditsError) as error:
            # Paused before the row is marked: whoever sees the row failed sees why. Rows that
            # meet the same refusal after the first go back to the queue (nothing was created).
            with self._pause_lock:
                first = not self.paused
                self._set_error(error, pause=True)
            if first:
                self._retry.record(self.ledger.fail_submission, row.id, me, error.message)
            else:
                self._retry.record(self.ledger.release, row.id, me)
            return WorkerReport(Outcome.BLOCKED, row.id, error=error, launched_at=launched_at)
        except (BadRequestError, ImageError) as error:
            self._retry.record(self.ledger.fail_submission, row.id, me, error.message)
            return WorkerReport(Outcome.REFUSED, row.id, error=error, launched_at=launched_at)
        except SubmissionUncertainError as error:
            self._retry.record(self.ledger.mark_uncertain, row.id, me, error.message)
            return WorkerReport(Outcome.UNCERTAIN, row.id, error=error, launched_at=launched_at)
        except (ServerError, MirragoError) as error:
            text = uncertain_text(error.message)
            self._retry.record(self.ledger.mark_uncertain, row.id, me, text)
            return WorkerReport(Outcome.UNCERTAIN, row.id, error=error, launched_at=launched_at)
        except Exception as error:  # noqa: BLE001 - unknown: the POST may have been sent
            log.exception("unexpected error submitting row %s", row.id)
            text = uncertain_text(type(error).__name__)
            self._retry.record(self.ledger.mark_uncertain, row.id, me, text)
            return WorkerReport(Outcome.UNCERTAIN, row.id, launched_at=launched_at)
        answered = time.monotonic()
        self._retry.record(self.ledger.record_submission, row.id, me, submission)
        return WorkerReport(
            Outcome.SUBMITTED,
            row.id,
            submission=submission,
            launched_at=launched_at,
            submitted_at=answered,
        )

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
        """Ask about one job and report the answer to the driver first (so the schedule goes
        on), then record it: a final answer with retries until the ledger takes it, a status
        change once (the next poll repeats it)."""
        me = self.runner_id
        try:
            job = self.client.job(job_id)
        except NotFoundError as error:
            self._report(WorkerReport(Outcome.GONE, row_id, error=error))
            message = f"The server no longer knows job {job_id} ({error.status_code}): {error}"
            self._retry.record(self.ledger.fail_job, row_id, me, message)
            return
        except Exception as error:  # noqa: BLE001 - network, 5xx, rate limit: ask again later
            if not isinstance(error, MirragoError):
                log.exception("unexpected error polling job %s", job_id)
            self._report(WorkerReport(Outcome.POLL_ERROR, row_id, error=as_mirrago_error(error)))
            return
        self._report(WorkerReport(Outcome.POLLED, row_id, job=job))
        if job.status is JobStatus.FAILED:
            message = job.error_message or "The server reported the job failed, with no reason."
            self._retry.record(self.ledger.fail_job, row_id, me, message, job.raw_status)
        elif job.status is JobStatus.IN_PROGRESS and job.raw_status != previous_status:
            self._retry.step(
                self.ledger.update_server_status,
                row_id,
                me,
                job.raw_status,
                cloth_id=job.cloth_id,
                result_url=job.result_url,
            )

    # ---- results

    def _fetch_result(self, row_id: int, job: Job) -> None:
        me = self.runner_id
        note = None
        result_path = thumb_path = None
        try:
            if not job.result_url:
                note = "The server reported the job completed but gave no result URL."
            else:
                attempts = self.tuning.download_attempts
                data, note = download(self.client, job.result_url, attempts, self._stopping)
                self._count("downloads" if data is not None else "download_failures")
                if data is not None:
                    result_path, thumb_path, note = store_result(self.data_dir, job.job_id, data)
            completed = self._retry.record(
                self.ledger.complete,
                row_id,
                me,
                server_status=job.raw_status,
                result_url=job.result_url,
                result_path=result_path,
                thumbnail_path=thumb_path,
                error=note,
            )
            if completed and result_path is not None:
                self.triage.submit(row_id)  # checked later, on a thread of its own
        except Exception:  # noqa: BLE001 - leave the row submitted: the next poll retries
            log.exception("could not record the result of job %s", job.job_id)
            self._report(WorkerReport(Outcome.FETCH_ERROR, row_id, job=job))
            return
        self._report(WorkerReport(Outcome.FETCHED, row_id))

    # ---- the driver's handling of outcomes

    def _report(self, outcome: WorkerReport) -> None:
        self._inbox.append(outcome)
        self._wake.set()
        self._notify_changed()

    def _drain_inbox(self) -> None:
        while self._inbox:
            self._handle(self._inbox.popleft())

    def _handle(self, outcome: WorkerReport) -> None:
        now = time.monotonic()
        kind = outcome.kind
        pacer, schedule = self._pacer, self._schedule
        if kind is Outcome.EMPTY:
            # unless rows were queued since this claim was tried
            self._queue_empty = outcome.epoch == self._queue_epoch
        elif kind is Outcome.SUBMITTED:
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
                created=outcome.submission.created_at,
            )
        elif kind is Outcome.RATE_LIMITED:
            error = outcome.error
            retry_after = error.retry_after if isinstance(error, RateLimitError) else None
            pacer.limited(now, outcome.launched_at, retry_after)
            self._count("rate_limited")
        elif kind in (Outcome.REFUSED, Outcome.UNCERTAIN):
            pacer.admitted(now, outcome.launched_at)
        elif kind is Outcome.BLOCKED:
            pass  # already paused by the worker
        elif kind in (Outcome.UNREACHABLE, Outcome.ERROR):
            self._transient += 1
            pause = backoff(self._transient, cap=30.0)
            pacer.paused_until = max(pacer.paused_until, now + pause)
            self._set_error(
                outcome.error, pause=self._transient >= self.tuning.max_transient_failures
            )
        elif kind is Outcome.POLLED:
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
        elif kind is Outcome.POLL_ERROR:
            assert outcome.row_id is not None
            self._count("poll_errors")
            error = outcome.error
            retry_after = None
            if isinstance(error, RateLimitError):
                retry_after = error.retry_after or 1.0
            if isinstance(error, AuthenticationError):
                self._set_error(error)
            schedule.unanswered(outcome.row_id, now, retry_after=retry_after)
        elif kind is Outcome.GONE:
            assert outcome.row_id is not None
            schedule.answered(outcome.row_id, now, done=True, raw_status=None)
        elif kind is Outcome.FETCH_ERROR:
            assert outcome.row_id is not None and outcome.job is not None
            schedule.add(outcome.row_id, outcome.job.job_id, now, now)
        elif kind is Outcome.LEDGER_DOWN:
            pass  # nothing was claimed; the heartbeat probes the ledger until it answers

    def _set_error(self, error: BaseException | None, *, pause: bool = False) -> None:
        if error is not None:
            self.last_error = as_mirrago_error(error)
        if pause:
            self.paused = True
        self._notify_changed()

    def _ledger_back(self) -> None:  # see _judge_after in __init__
        self._judge_after = time.monotonic() + self.tuning.stale_after

    def _count(self, name: str) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def _notify_changed(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()
