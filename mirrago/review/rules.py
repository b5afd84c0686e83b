"""Review rules: the verdicts and their badges, the reasons a fail gives, which verdict a row
holds now, and the filters and to-review queue over a batch's rows. No UI and no SQL here.

A verdict is "pass" or "fail" on a completed row; a fail needs at least one reason. Every
verdict is kept in the ledger's review history; the row holds the current one. A retried row
starts its new attempt unreviewed, its old verdicts kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mirrago.errors import ReviewError
from mirrago.ledger import JobRecord, JobState, ReviewRecord

PASS = "pass"
FAIL = "fail"
VERDICTS = (PASS, FAIL)
# How every page shows a verdict: its word, badge colour and icon (one table for all of them).
VERDICT_BADGES: dict[str, tuple[str, str, str]] = {
    PASS: ("Pass", "green", ":material/check:"),
    FAIL: ("Fail", "red", ":material/close:"),
}
UNREVIEWED = "unreviewed"
# What the verdict filters call each choice: the badges' words, and a result still to review.
VERDICT_WORDS: dict[str, str] = {
    UNREVIEWED: "To review",
    **{verdict: badge[0] for verdict, badge in VERDICT_BADGES.items()},
}

# Reason tags, in the order of their number keys (1 … 6).
REASONS: dict[str, str] = {
    "garment-distorted": "Garment distorted",
    "wrong-garment": "Wrong garment",
    "artifacts": "Artifacts",
    "face-body-changed": "Face or body changed",
    "background-wrong": "Background wrong",
    "other": "Other",
}


# --------------------------------------------------------------------------- verdicts


def check_verdict(job: JobRecord, verdict: str, reasons: Sequence[str]) -> None:
    """Raise ReviewError when `verdict` with `reasons` cannot be given to `job`."""
    if verdict not in VERDICTS:
        raise ReviewError(f"Unknown verdict {verdict!r}: choose Pass or Fail.")
    if job.state is not JobState.COMPLETED:
        raise ReviewError("Only a finished result can be reviewed.")
    unknown = [reason for reason in reasons if reason not in REASONS]
    if unknown:
        raise ReviewError(f"Unknown reason {unknown[0]!r}: choose one of the listed reasons.")
    if verdict == FAIL and not reasons:
        raise ReviewError("A fail needs at least one reason: pick one (keys 1–6), then Fail.")


def current_reviews(
    history: Iterable[ReviewRecord], jobs: Iterable[JobRecord]
) -> dict[int, ReviewRecord]:
    """The review each row holds now: the latest verdict on its current attempt not undone."""
    attempts = {job.id: job.attempts for job in jobs}
    current: dict[int, ReviewRecord] = {}
    for review in history:
        if not review.undone and attempts.get(review.row_id) == review.attempt:
            current[review.row_id] = review
    return current


# --------------------------------------------------------------------------- filters and queue


def reviewable(job: JobRecord) -> bool:
    return job.state is JobState.COMPLETED


def is_unreviewed(job: JobRecord) -> bool:
    return reviewable(job) and job.review_verdict not in VERDICTS


def matches(job: JobRecord, verdicts: Iterable[str] = (), reasons: Iterable[str] = ()) -> bool:
    """The review filters: any of `verdicts` ("pass", "fail", "unreviewed"), and every one of
    `reasons`; empty filters match everything."""
    verdicts = set(verdicts)
    if verdicts:
        verdict = job.review_verdict if job.review_verdict in VERDICTS else UNREVIEWED
        if verdict not in verdicts:
            return False
    return set(reasons) <= set(job.review_tags)


def review_queue(jobs: Iterable[JobRecord]) -> list[JobRecord]:
    """Unreviewed completed results, oldest first (by when they finished, then row)."""
    waiting = [job for job in jobs if is_unreviewed(job)]
    return sorted(waiting, key=lambda job: (job.finished_at or job.created_at, job.row_index))


def next_unreviewed(ordered: Sequence[JobRecord], current_id: int | None) -> JobRecord | None:
    """The first unreviewed result after `current_id` in `ordered` (the current filter's
    order), wrapping around; None when every result there is reviewed."""
    start = next((i for i, job in enumerate(ordered) if job.id == current_id), -1)
    for job in [*ordered[start + 1 :], *ordered[: start + 1]]:
        if is_unreviewed(job) and job.id != current_id:
            return job
    return None
