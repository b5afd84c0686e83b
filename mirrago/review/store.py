"""Review as the ledger keeps it: giving a verdict (checked by the rules first), reading the
comparison of two runs and saving a judgement of one pair.

Several reviewers may judge one batch at once: a verdict names the review it was given on
(`expected_review_id`), and one given on a stale view is refused with `ReviewConflict` (who
judged it since, what and when) instead of overwriting theirs; undo takes back only one's own.
"""

from __future__ import annotations

from collections.abc import Sequence

from mirrago.ledger import UNCHECKED, JobRecord, Ledger, ReviewRecord, Unchecked
from mirrago.ledger import ReviewConflict as ReviewConflict  # give_verdict raises it
from mirrago.review.compare import JUDGEMENTS, ComparedPair, shared_pairs
from mirrago.review.rules import PASS, REASONS, ReviewError, check_verdict


def give_verdict(
    ledger: Ledger,
    job: JobRecord,
    verdict: str,
    reasons: Sequence[str] = (),
    note: str | None = None,
    *,
    reviewer: str | None = None,
    seconds: float | None = None,
    expected_review_id: int | None | Unchecked = UNCHECKED,
) -> ReviewRecord:
    """Check and record a verdict on `job`; a pass keeps no reasons. With
    `expected_review_id` (the review the reviewer saw, None for none), raises `ReviewConflict`
    when someone else judged the row since (see `Ledger.record_review`)."""
    check_verdict(job, verdict, reasons)
    reasons = [reason for reason in REASONS if reason in set(reasons)]  # canonical order
    note = (note or "").strip() or None
    reviewer = (reviewer or "").strip() or None
    if verdict == PASS:
        reasons = []
    if seconds is not None:
        seconds = max(0.0, round(float(seconds), 2))
    record = ledger.record_review(
        job.id,
        verdict,
        reasons,
        note,
        reviewer=reviewer,
        seconds=seconds,
        expected_review_id=expected_review_id,
    )
    if record is None:
        raise ReviewError("This result is no longer in the ledger (its batch was deleted).")
    return record


def compare_runs(ledger: Ledger, left_batch_id: int, right_batch_id: int) -> list[ComparedPair]:
    return shared_pairs(
        ledger.jobs(batch_id=left_batch_id),
        ledger.jobs(batch_id=right_batch_id),
        ledger.judgements(left_batch_id, right_batch_id),
    )


def judge(
    ledger: Ledger,
    left_batch_id: int,
    right_batch_id: int,
    key: str,
    judgement: str | None,
    *,
    reviewer: str | None = None,
) -> None:
    if judgement is not None and judgement not in JUDGEMENTS:
        raise ReviewError(f"Unknown judgement {judgement!r}: left, right or same.")
    ledger.save_judgement(
        left_batch_id, right_batch_id, key, judgement, reviewer=(reviewer or "").strip() or None
    )
