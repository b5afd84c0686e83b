"""Batch figures for the Batch page and `mirrago batch --follow`: progress, rate, ETA, credits,
pass rate, the batch's state in words, the list of past batches, and deleting a batch.

UI-free: everything is computed from ledger rows, so the page, the CLI and the tests agree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from mirrago.datadir import remove_stored
from mirrago.ledger import (
    ACTIVE_STATES,
    BatchRecord,
    JobRecord,
    JobState,
    Ledger,
    Origin,
    utcnow,
)
from mirrago.models import CREDITS_PER_TRY_ON

log = logging.getLogger(__name__)

RATE_WINDOW = timedelta(minutes=5)  # the rate is measured over the latest jobs


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands, in the figures the progress panel shows."""

    total: int
    counts: dict[JobState, int]
    rate_per_min: float | None  # finished jobs per minute, over the latest RATE_WINDOW
    eta_seconds: float | None  # until the active rows are done, at that rate
    credits_spent: int  # jobs the server accepted (each spent a credit)
    state: str  # "running", "paused", "finished", "stopped", "empty"

    @property
    def finished(self) -> int:
        return sum(self.counts[state] for state in JobState if state.is_final)

    @property
    def active(self) -> int:
        return sum(self.counts[state] for state in ACTIVE_STATES)

    @property
    def in_flight(self) -> int:
        return self.counts[JobState.SUBMITTING] + self.counts[JobState.SUBMITTED]

    @property
    def fraction(self) -> float:
        return self.finished / self.total if self.total else 0.0

    @property
    def pass_rate(self) -> float | None:
        return pass_rate(self.counts)


def pass_rate(counts: dict[JobState, int]) -> float | None:
    """Completed jobs among those that ended (canceled rows do not count); None before any."""
    ended = counts[JobState.COMPLETED] + counts[JobState.FAILED] + counts[JobState.UNCERTAIN]
    return counts[JobState.COMPLETED] / ended if ended else None


def batch_state(batch: BatchRecord, counts: dict[JobState, int]) -> str:
    """The batch's state in one word: running, paused, finished, stopped (a CLI batch whose
    command ended with rows left: running it again continues) or empty."""
    if not sum(counts.values()):
        return "empty"
    active = sum(counts[state] for state in ACTIVE_STATES)
    if not active:
        return "finished"
    if batch.paused:
        return "paused"
    if batch.private and not (counts[JobState.SUBMITTING] + counts[JobState.SUBMITTED]):
        return "stopped"
    return "running"


def progress(
    batch: BatchRecord, rows: list[JobRecord], now: datetime | None = None
) -> BatchProgress:
    """The figures of `batch` from its rows (`ledger.jobs(batch_id=...)`)."""
    now = now or utcnow()
    counts = {state: 0 for state in JobState}
    finished_times: list[datetime] = []
    started_times: list[datetime] = []
    credits = 0
    for row in rows:
        counts[row.state] += 1
        if row.job_id is not None:
            credits += CREDITS_PER_TRY_ON
        if row.submitted_at is not None:
            started_times.append(row.submitted_at)
        if row.finished_at is not None and row.state is not JobState.CANCELED:
            finished_times.append(row.finished_at)
    rate = _rate(finished_times, started_times, now)
    active = sum(counts[state] for state in ACTIVE_STATES)
    eta = active / rate * 60 if rate and active else None
    return BatchProgress(len(rows), counts, rate, eta, credits, batch_state(batch, counts))


def _rate(finished: list[datetime], started: list[datetime], now: datetime) -> float | None:
    """Jobs finished per minute over the latest window (from the first submission in it)."""
    if not finished or not started:
        return None
    since = max(min(started), now - RATE_WINDOW)
    recent = [moment for moment in finished if moment >= since]
    end = max(finished) if len(recent) == len(finished) else now
    span = (end - since).total_seconds()
    if not recent or span <= 0:
        return None
    return len(recent) / span * 60


# --------------------------------------------------------------------------- past batches


@dataclass(frozen=True)
class BatchSummary:
    batch: BatchRecord
    counts: dict[JobState, int]
    owner: str | None = None  # who started it, with sign-in

    @property
    def size(self) -> int:
        return sum(self.counts.values())

    @property
    def state(self) -> str:
        return batch_state(self.batch, self.counts)

    @property
    def pass_rate(self) -> float | None:
        return pass_rate(self.counts)

    @property
    def origin(self) -> str:
        """Where the batch was started: the Batch page or the command line."""
        return Origin.of(self.batch.source).place


def summaries(ledger: Ledger, limit: int | None = None) -> list[BatchSummary]:
    """Past batches (page and CLI ones; single try-ons left out), newest first."""
    found = [b for b in ledger.batches() if not Origin.of(b.source).is_single]
    if limit is not None:
        found = found[:limit]
    counts = ledger.batch_counts([b.id for b in found])
    owners = ledger.batch_owners([b.id for b in found])
    empty = {state: 0 for state in JobState}
    return [BatchSummary(b, counts.get(b.id, dict(empty)), owners.get(b.id)) for b in found]


def batch_owner(rows: list[JobRecord]) -> str | None:
    """Who started a batch (with sign-in): the owner its rows record; None without."""
    return min((row.owner for row in rows if row.owner), default=None)


def latest_batch(ledger: Ledger) -> BatchRecord | None:
    listed = summaries(ledger, limit=1)
    return listed[0].batch if listed else None


def delete_batch(ledger: Ledger, data_dir: Path, batch_id: int) -> int | None:
    """Delete a batch, and the stored inputs, results and thumbnails that only it used.

    Only files inside the data dir are removed (a CLI batch may name the user's own photos).
    Returns how many files were removed; None when the batch has jobs in progress (pause or
    wait first).
    """
    paths = ledger.delete_batch(batch_id)
    if paths is None:
        return None
    # The ledger returned only the files no other row uses.
    return sum(remove_stored(value, data_dir) for value in paths)
