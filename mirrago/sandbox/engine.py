"""The sandbox's state and work behind the routes: the job store, its workers, fault
injection, callbacks and the counters tests read. Clients and tokens (tokens.py), credits
(accounts.py), the rate limit (limits.py) and reading a submission's inputs (inputs.py) are
its parts.

The HTTP layer (app.py) only turns requests into calls here and `SandboxError`s into responses.
"""

from __future__ import annotations

import logging
import queue
import random
import re
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from mirrago.sandbox import render
from mirrago.sandbox.accounts import Credits
from mirrago.sandbox.config import SandboxConfig, SandboxError
from mirrago.sandbox.inputs import (
    ImageSource,
    Submission,
    SubmitRequest,
    check_size,
    read_submission,
)
from mirrago.sandbox.limits import RateLimit
from mirrago.sandbox.tokens import Clients
from mirrago.sandbox.urlguard import FetchError, check_url, public_session

__all__ = [
    "STAT_NAMES",
    "Engine",
    "ImageSource",
    "SandboxConfig",
    "SandboxError",
    "SubmitRequest",
]

log = logging.getLogger("mirrago.sandbox")

CALLBACK_TIMEOUT = 3.0
CALLBACK_DELAYS = (0.0, 0.3, 1.0)  # one try after each delay
RESULT_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.png$")
STAT_NAMES = (
    "token_requests",
    "token_failures",
    "generate_requests",
    "jobs_created",
    "jobs_completed",
    "jobs_failed",
    "job_reads",
    "unauthorized",
    "bad_requests",
    "insufficient_credits",
    "rate_limited",
    "submit_faults",
    "read_faults",
    "callbacks_sent",
    "callback_failures",
)
# What a job reports under strict_reference: only the reference's own spellings.
STRICT_STATUS = {
    "pending": "pending",
    "queued": "queued",
    "processing": "queued",
    "completed": "completedc",
    "failed": "failed",
}


@dataclass
class _Job:
    job_id: str
    client_id: str
    cloth_id: str
    created_at: str
    background: str | None
    callback_url: str | None
    base_url: str
    inputs: tuple[Path, Path] | None
    status: str = "pending"
    error: str | None = None
    # Wall-clock times (time.time()) for `SandboxEngine.job_times`: when the job was created,
    # a worker took it, and it ended (completed or failed).
    created: float = 0.0
    started: float | None = None
    finished: float | None = None

    @property
    def result_name(self) -> str:
        return f"{self.job_id}.png"


def _now_text() -> str:
    """A naive UTC timestamp with microseconds, as the reference shows them."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _seeded(seed: int | None, purpose: str) -> random.Random:
    return random.Random(None if seed is None else f"{seed}:{purpose}")


class Engine:
    """Everything the sandbox knows and does; thread-safe. Call `stop()` when done."""

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self._lock = threading.Lock()
        # Separate streams, so that with a seed the faults drawn for requests (in request order)
        # repeat regardless of how the workers' draws interleave with them.
        self._request_rng = _seeded(self.config.seed, "requests")
        self._job_rng = _seeded(self.config.seed, "jobs")
        self._clients = Clients(self.config, self._now, self._count)
        self._credits = Credits(self.config, self._count)
        self._rate_limit = RateLimit(self.config, self._now)
        self._jobs: dict[str, _Job] = {}
        self._stats: Counter[str] = Counter()
        self._queue: queue.Queue[str | None] = queue.Queue()  # None wakes a worker to stop
        self._stopping = threading.Event()
        self._workers_running = 0
        self._threads: list[threading.Thread] = []
        self._dir = Path(tempfile.mkdtemp(prefix="mirrago-sandbox-"))
        # Also removed at interpreter exit, for hosts that never call stop() (a cached resource).
        self._remove_dir = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        self._callbacks = ThreadPoolExecutor(4, thread_name_prefix="mirrago-sandbox-callback")
        # The clock of token lifetimes and the rate limit's bucket: tests replace it to make
        # expiry and refills exact instead of racing real time.
        self.clock: Callable[[], float] = time.monotonic
        self._ensure_workers()

    def _now(self) -> float:
        return self.clock()

    # ---- clients, tokens, credits -------------------------------------------------------------

    def add_client(self, client_id: str, client_secret: str) -> None:
        """Register another API client (for tests of isolation between clients)."""
        self._clients.add_client(client_id, client_secret)

    def issue_token(self, client_id: str | None, client_secret: str | None) -> dict[str, Any]:
        """The OAuth client-credentials grant: a fresh opaque token, or 401."""
        return self._clients.issue_token(client_id, client_secret)

    def authenticate(self, token: str | None) -> str:
        """The client id the bearer token belongs to; 401 if it is missing, unknown or expired."""
        return self._clients.authenticate(token)

    def credits(self, client_id: str) -> int:
        """The client's current credit balance."""
        return self._credits.balance(client_id)

    def set_credits(self, client_id: str, balance: int) -> None:
        """Set a client's balance (demos of a low or empty account)."""
        self._credits.set(client_id, balance)

    # ---- submissions -----------------------------------------------------------------------------

    def admit_submission(self, token: str | None) -> str:
        """Count, authenticate and rate-limit a generate-image request; return its client id."""
        self._count("generate_requests")
        client_id = self.authenticate(token)
        wait = self._rate_limit.take(client_id)
        if wait is not None:
            self._count("rate_limited")
            raise self._rate_limit.error(wait)
        return client_id

    def check_upload_size(self, field_name: str, size: int | None) -> None:
        """413 when an uploaded file is over `max_upload_bytes` (counted as a bad request)."""
        try:
            check_size(field_name, size, self.config.max_upload_bytes)
        except SandboxError:
            self._count("bad_requests")
            raise

    def submit(self, client_id: str, request: SubmitRequest, base_url: str) -> dict[str, Any]:
        """Validate a submission, charge one credit and queue the job; the reference's response.

        Raises SandboxError: 400 (missing or bad field), 413, 402 (no credits), 500 (fault).
        A refused submission creates no job and charges nothing.
        """
        try:
            submission = read_submission(request, base_url, self.config)
        except SandboxError as error:
            if error.status_code in (400, 413):
                self._count("bad_requests")
            raise
        if self._chance(self.config.submit_fail_rate, self._request_rng):
            self._count("submit_faults")
            raise SandboxError(500, "Internal Server Error")
        username = (request.username or "").strip()[:200] or f"TEMP{uuid.uuid4()}"
        credits_before = self._credits.debit(client_id)
        job = self._create_job(client_id, submission, base_url)
        self._enqueue(job)
        if self.config.answer_delay > 0:  # a slow network: the job exists, its answer lags
            self._stopping.wait(self.config.answer_delay)
        return {
            "job_id": job.job_id,
            "status": "pending",
            "business_id": client_id,
            "username": username,
            "cloth_id": job.cloth_id,
            "credits_before": credits_before,
            "created_at": job.created_at,
        }

    # ---- the job store -------------------------------------------------------------------------

    def _create_job(self, client_id: str, submission: Submission, base_url: str) -> _Job:
        """A new job of a charged submission, its inputs on disk; when they cannot be stored,
        the credit is refunded and the answer is a 500 (no job, no charge)."""
        job_id = str(uuid.uuid4())
        try:
            inputs = self._store_inputs(job_id, submission.target, submission.garment)
        except OSError:  # the sandbox is stopping, or the disk is full
            self._credits.refund(client_id)
            raise SandboxError(500, "Internal Server Error") from None
        return _Job(
            job_id=job_id,
            client_id=client_id,
            cloth_id=f"business/{client_id}/clothes/{uuid.uuid4()}.{submission.garment_ext}",
            created_at=_now_text(),
            background=submission.background,
            callback_url=submission.callback_url,
            base_url=base_url.rstrip("/"),
            inputs=inputs,
            created=time.time(),
        )

    def _store_inputs(self, job_id: str, target: bytes, garment: bytes) -> tuple[Path, Path]:
        # Inputs wait on disk rather than in memory: hundreds of queued jobs stay cheap.
        paths = (self._dir / f"{job_id}-target", self._dir / f"{job_id}-garment")
        paths[0].write_bytes(target)
        paths[1].write_bytes(garment)
        return paths

    def _enqueue(self, job: _Job) -> None:
        with self._lock:
            self._jobs[job.job_id] = job
            self._stats["jobs_created"] += 1
            job.status = "queued"
        self._ensure_workers()
        self._queue.put(job.job_id)

    # ---- reading jobs and results -------------------------------------------------------------

    def read_job(self, token: str | None, job_id: str, base_url: str) -> dict[str, Any]:
        """`GET /v1/mirrago/job/{job_id}` for the token's client: the job, 401, 404 or a fault."""
        self._count("job_reads")
        client_id = self.authenticate(token)
        if self._chance(self.config.read_fail_rate, self._request_rng):
            self._count("read_faults")
            raise SandboxError(500, "Internal Server Error")
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.client_id != client_id:
                raise SandboxError(404, f"Job {job_id[:64]} not found.")
            return self._view(job, base_url.rstrip("/"))

    def _view(self, job: _Job, base_url: str) -> dict[str, Any]:
        """The job in the reference's shape (call with the lock held)."""
        done = job.status == "completed"
        failed = job.status == "failed"
        status = STRICT_STATUS[job.status] if self.config.strict_reference else job.status
        if done:
            result_url: str | None = f"{base_url}/results/{job.result_name}"
        else:
            result_url = "" if failed else None
        return {
            "job_id": job.job_id,
            "cloth_id": job.cloth_id,
            "cloth_img_url": "",
            "status": status,
            "created_at": job.created_at,
            "generated_image_key": f"/results/{job.result_name}" if done else "",
            "result_url": result_url,
            "error_msg": {"error": job.error or "something went wrong"} if failed else {},
        }

    def result_path(self, name: str) -> Path | None:
        """The rendered PNG called `name` (`<job_id>.png`), if that job has completed."""
        if not RESULT_NAME.match(name):
            return None
        with self._lock:
            job = self._jobs.get(name.removesuffix(".png"))
            if job is None or job.status != "completed":
                return None
        path = self._dir / name
        return path if path.is_file() else None

    # ---- workers -----------------------------------------------------------------------------

    def _ensure_workers(self) -> None:
        """Start workers up to `config.workers` (the count may be raised at run time)."""
        with self._lock:
            missing = max(1, int(self.config.workers)) - self._workers_running
            self._workers_running += max(0, missing)
            self._threads = [thread for thread in self._threads if thread.is_alive()]
            for _ in range(missing):
                thread = threading.Thread(
                    target=self._work, name="mirrago-sandbox-worker", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _retire_if_surplus(self) -> bool:
        with self._lock:
            if self._workers_running > max(1, int(self.config.workers)):
                self._workers_running -= 1
                return True
            return False

    def _work(self) -> None:
        while not self._stopping.is_set() and not self._retire_if_surplus():
            try:
                job_id = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if job_id is not None:
                self._process(job_id)

    def _latency(self) -> float:
        latency = self.config.latency
        if isinstance(latency, tuple | list):
            low, high = float(latency[0]), float(latency[1])
            with self._lock:
                return self._job_rng.uniform(min(low, high), max(low, high))
        return max(0.0, float(latency))

    def _chance(self, rate: float, rng: random.Random) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return rng.random() < rate

    def _process(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs[job_id]
            job.status = "processing"
            job.started = time.time()
        started = time.monotonic()
        latency = self._latency()
        error = None
        try:
            if self._chance(self.config.job_fail_rate, self._job_rng):
                error = "Try-on generation failed: the garment could not be fitted to the person."
            else:
                self._render(job)
        except Exception as exc:  # a job failure must never kill a worker
            log.warning("sandbox job %s failed to render: %s", job_id, exc)
            error = "Try-on generation failed: the images could not be rendered."
        finally:
            self._drop_inputs(job)
        self._stopping.wait(max(0.0, latency - (time.monotonic() - started)))
        self._finish(job, error)

    def _render(self, job: _Job) -> None:
        assert job.inputs is not None
        with Image.open(job.inputs[0]) as person, Image.open(job.inputs[1]) as garment:
            person.draft("RGB", (render.MAX_SIDE, render.MAX_SIDE))
            result = render.compose(person, garment, job.background, fitted=self.config.fitted)
        result.save(self._dir / job.result_name, format="PNG", compress_level=3)

    def _drop_inputs(self, job: _Job) -> None:
        for path in job.inputs or ():
            path.unlink(missing_ok=True)
        job.inputs = None

    def _finish(self, job: _Job, error: str | None) -> None:
        if error is not None:  # refunded before it reads as failed: whoever sees it sees both
            self._credits.refund(job.client_id)
        with self._lock:
            job.finished = time.time()
            if error is None:
                job.status = "completed"
                self._stats["jobs_completed"] += 1
            else:
                job.status, job.error = "failed", error
                self._stats["jobs_failed"] += 1
            payload = self._view(job, job.base_url) if job.callback_url else None
        if payload is not None and not self._stopping.is_set():
            try:
                self._callbacks.submit(self._deliver_callback, str(job.callback_url), payload)
            except RuntimeError:  # the pool is shut down: the sandbox is stopping
                pass

    def _deliver_callback(self, url: str, payload: dict[str, Any]) -> None:
        """POST the final job to its callback_url: best effort, a few tries with backoff."""
        allow_private = self.config.allow_private_urls
        for delay in CALLBACK_DELAYS:
            if self._stopping.wait(delay):
                return
            try:
                check_url(url, allow_private)  # callbacks reach public addresses only, too
                with public_session(allow_private) as session:
                    response = session.post(
                        url, json=payload, timeout=CALLBACK_TIMEOUT, allow_redirects=False
                    )
                if response.ok:
                    self._count("callbacks_sent")
                    return
            except FetchError:
                break
            except requests.RequestException:
                pass
        self._count("callback_failures")
        log.info("sandbox callback for job %s was not delivered", payload.get("job_id"))

    # ---- counters and shutdown ---------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    def job_times(self) -> dict[str, tuple[float, float | None, float | None]]:
        """Every job's (created, started, finished) wall-clock times (`time.time()`; None: not
        yet): what a benchmark compares with when a client noticed a job had ended."""
        with self._lock:
            return {
                job.job_id: (job.created, job.started, job.finished) for job in self._jobs.values()
            }

    def stats(self) -> dict[str, int]:
        """A snapshot of the counters (every name in STAT_NAMES, zero if it never happened)."""
        with self._lock:
            return {name: self._stats[name] for name in STAT_NAMES}

    def stop(self) -> None:
        """Stop the workers and callbacks and delete the results; safe to call twice."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._callbacks.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + 2.0
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._remove_dir()
