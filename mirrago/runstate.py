"""The runner's small parts: its tuning, its counters, and what its worker threads report to
the driver thread."""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

from mirrago.errors import MirragoError
from mirrago.models import Job, Submission


@dataclass
class RunnerTuning:
    """Knobs of a `Runner` (or override single ones by keyword). The defaults suit the live
    API."""

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


@dataclass
class RunnerStats:
    """What the runner did, for benchmarks and diagnostics."""

    submissions: int = 0  # POSTs answered with a job
    rate_limited: int = 0
    polls: int = 0  # GETs of job status, answered or not
    poll_errors: int = 0
    downloads: int = 0
    download_failures: int = 0


class Outcome(enum.Enum):
    """What a worker reports to the driver thread."""

    EMPTY = "no queued row to claim"
    LEDGER_DOWN = "the ledger could not be reached: nothing claimed"
    SUBMITTED = "the server created the job"
    RATE_LIMITED = "rate limited: the row is queued again"
    UNREACHABLE = "the server could not be reached: the row is queued again"
    BLOCKED = "credentials or credits refused: submitting pauses"
    REFUSED = "the server refused the row (or its input is unusable): failed"
    UNCERTAIN = "the submission's outcome is unknown"
    ERROR = "an unexpected error in the worker"
    POLLED = "the server reported the job's status"
    POLL_ERROR = "the status request failed: ask again later"
    GONE = "the server no longer knows the job"
    FETCHED = "the result is stored and recorded"
    FETCH_ERROR = "the result could not be recorded: poll again"


@dataclass
class WorkerReport:
    """A worker's report to the driver thread."""

    kind: Outcome
    row_id: int | None = None
    job: Job | None = None
    submission: Submission | None = None
    error: MirragoError | None = None
    launched_at: float = 0.0
    submitted_at: float = 0.0
    epoch: int = 0


def as_mirrago_error(error: BaseException) -> MirragoError:
    if isinstance(error, MirragoError):
        return error
    return MirragoError(f"Unexpected {type(error).__name__}: {error}")
