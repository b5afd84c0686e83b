"""What the ledger holds and answers with: job states and their sets, records, its errors.

Plain types only (no SQL): widgets and pages that show rows import these. The row mappers at
the end turn a table row into its record.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mirrago.errors import LedgerError, LedgerUnavailableError

UNKNOWN_BACKEND = "unknown"  # rows recorded before ledgers knew their backend (schema 1)


__all__ = ["LedgerError", "LedgerUnavailableError"]  # re-exported: defined in mirrago.errors


class Origin(enum.StrEnum):
    """Where a batch was started: the one definition of the values stored in `batches.source`.

    A batch from `mirrago batch` stores its output folder there instead (running the command
    again with the same folder resumes it), so any source that is not one of these values is a
    CLI batch: read a stored source with `Origin.of`.
    """

    TRY_ON = "try-on"  # one try-on from the Try-on page
    CLI_TRY_ON = "cli:try-on"  # one try-on from `mirrago try-on`
    BATCH_PAGE = "batch-page"
    CLI_BATCH = "cli:batch"  # never stored as such: the output folder is
    # A visitor's live try-on on the Stage page: in no deck, list or gallery, deleted on Reset.
    STAGE_VISITOR = "stage-live"

    @classmethod
    def of(cls, source: str) -> Origin:
        try:
            return cls(source)
        except ValueError:
            return cls.CLI_BATCH

    @property
    def is_single(self) -> bool:
        """One try-on, not a batch to a user: lists of past batches leave it out."""
        return self in (Origin.TRY_ON, Origin.CLI_TRY_ON, Origin.STAGE_VISITOR)

    @property
    def label(self) -> str:
        """The short name the Usage page's Source column gives it."""
        labels = {
            Origin.TRY_ON: "Try-on",
            Origin.BATCH_PAGE: "Batch",
            Origin.STAGE_VISITOR: "Stage",
        }
        return labels.get(self, "CLI")

    @property
    def place(self) -> str:
        """Where it was started, in words: "Batch page", "Command line"."""
        return {
            Origin.TRY_ON: "Try-on page",
            Origin.BATCH_PAGE: "Batch page",
            Origin.STAGE_VISITOR: "Stage page",
        }.get(self, "Command line")


class JobState(enum.StrEnum):
    """Where a job is in its life. See the module docstring of `mirrago.runner` for the moves."""

    QUEUED = "queued"  # waiting for a runner to submit it
    SUBMITTING = "submitting"  # claimed by a runner; the POST is (about to be) in flight
    SUBMITTED = "submitted"  # the server has it (job_id known); in progress there
    COMPLETED = "completed"
    FAILED = "failed"
    UNCERTAIN = "uncertain"  # the submission's outcome is unknown: never resubmitted by itself
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        """The runner will not move a row in this state by itself (only a user's retry does)."""
        return self in FINAL_STATES

    @property
    def is_active(self) -> bool:
        """Queued or in progress: not finished yet, the runner still moves it."""
        return self in ACTIVE_STATES

    @property
    def words(self) -> str:
        """The state as every page and the CLI name it."""
        return STATE_WORDS[self]


# The one definition of each set of states: every page, the CLI, the runner and the SQL use these.
FINAL_STATES = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.UNCERTAIN, JobState.CANCELED}
)
ACTIVE_STATES = frozenset(JobState) - FINAL_STATES  # queued, submitting, submitted: unfinished
RETRYABLE_STATES = frozenset({JobState.FAILED, JobState.UNCERTAIN})
# A state in the users' words: short, since badges sit on small cards too.
STATE_WORDS: dict[JobState, str] = {
    JobState.QUEUED: "Waiting",
    JobState.SUBMITTING: "Sending",
    JobState.SUBMITTED: "Processing",
    JobState.COMPLETED: "Done",
    JobState.FAILED: "Failed",
    JobState.UNCERTAIN: "Unconfirmed",
    JobState.CANCELED: "Canceled",
}


@dataclass(frozen=True)
class JobInput:
    """One try-on as the user gave it: paths or http(s) URLs, and the options."""

    target: str
    garment: str
    background: str | None = None
    username: str | None = None
    owner: str | None = None  # who asked for it, when the app has sign-in (else None)


@dataclass(frozen=True)
class JobRecord:
    """One row of a batch, as the ledger holds it now."""

    id: int
    batch_id: int
    row_index: int
    target: str
    garment: str
    background: str | None
    username: str | None
    state: JobState
    job_id: str | None
    server_status: str | None
    cloth_id: str | None
    credits_before: int | None
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    attempts: int
    error: str | None
    result_url: str | None
    result_path: str | None
    thumbnail_path: str | None
    review_verdict: str | None
    review_note: str | None
    review_tags: tuple[str, ...]
    owner: str | None = None
    deleted_at: datetime | None = None  # deleted by its owner: files gone, inputs blanked
    backend: str = UNKNOWN_BACKEND
    claimed_by: str | None = None  # the runner (host:pid:token) that submitted or polls it

    @property
    def input(self) -> JobInput:
        return JobInput(self.target, self.garment, self.background, self.username, self.owner)


@dataclass(frozen=True)
class BatchRecord:
    id: int
    name: str
    source: str
    created_at: datetime
    private: bool = False  # worked only by the runner that named it (a CLI run)
    paused: bool = False  # no runner claims its queued rows until it is resumed


@dataclass(frozen=True)
class CreditReading:
    """The balance the server reported before a job was charged (`credits_before`)."""

    at: datetime
    credits_before: int
    job_id: str | None


@dataclass(frozen=True)
class JobEvent:
    """A recorded event in a row's life that its current state does not show (a retry, say)."""

    row_id: int
    at: datetime
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Recovery:
    """What `Ledger.recover` did: rows marked uncertain, and submitted rows now ours to poll."""

    uncertain: list[int]
    adopted: list[JobRecord]


@dataclass(frozen=True)
class ReviewRecord:
    """One verdict given on one attempt of a row (the history keeps every one, undone too)."""

    id: int
    row_id: int
    attempt: int
    verdict: str
    reasons: tuple[str, ...]
    note: str | None
    reviewer: str | None
    at: datetime
    seconds: float | None
    undone: bool


@dataclass(frozen=True)
class Judgement:
    """Which of two runs of the same pair is better: "left", "right" or "same"."""

    left_batch_id: int
    right_batch_id: int
    pair_key: str
    judgement: str
    reviewer: str | None
    at: datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- row mappers


def batch_record(row: Any) -> BatchRecord:
    return BatchRecord(
        int(row.id), row.name, row.source, row.created_at, bool(row.private), bool(row.paused)
    )


def job_record(row: Any) -> JobRecord:
    tags: tuple[str, ...] = ()
    if row.review_tags and row.review_tags != "[]":  # most rows: no parse (a 5,000-row batch)
        try:
            tags = tuple(json.loads(row.review_tags))
        except ValueError:
            tags = ()
    return JobRecord(
        id=int(row.id),
        batch_id=int(row.batch_id),
        row_index=int(row.row_index),
        target=row.target,
        garment=row.garment,
        background=row.background,
        username=row.username,
        state=JobState(row.state),
        job_id=row.job_id,
        server_status=row.server_status,
        cloth_id=row.cloth_id,
        credits_before=row.credits_before,
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        finished_at=row.finished_at,
        attempts=int(row.attempts),
        error=row.error,
        result_url=row.result_url,
        result_path=row.result_path,
        thumbnail_path=row.thumbnail_path,
        review_verdict=row.review_verdict,
        review_note=row.review_note,
        review_tags=tags,
        owner=row.owner,
        deleted_at=row.deleted_at,
        backend=row.backend,
        claimed_by=row.claimed_by,
    )


def review_record(row: Any) -> ReviewRecord:
    try:
        reasons = tuple(json.loads(row.reasons or "[]"))
    except ValueError:
        reasons = ()
    return ReviewRecord(
        id=int(row.id),
        row_id=int(row.row_id),
        attempt=int(row.attempt),
        verdict=row.verdict,
        reasons=reasons,
        note=row.note,
        reviewer=row.reviewer,
        at=row.at,
        seconds=None if row.seconds is None else float(row.seconds),
        undone=bool(row.undone),
    )
