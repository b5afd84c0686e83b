"""Reviewing a batch: verdicts and their reasons, the to-review queue, summary figures, the
person × garment matrix and the comparison of two runs of the same pairs. No UI here.

A verdict is "pass" or "fail" on a completed row; a fail needs at least one reason. Every
verdict is kept in the ledger's review history (`Ledger.record_review`); the row holds the
current one. A retried row starts its new attempt unreviewed, its old verdicts kept.

Several reviewers may judge one batch at once: a verdict names the review it was given on
(`expected_review_id`), and one given on a stale view is refused with `ReviewConflict` (who
judged it since, what and when) instead of overwriting theirs; undo takes back only one's own.
"""

from __future__ import annotations

import functools
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mirrago.errors import MirragoError
from mirrago.ledger import (
    UNCHECKED,
    JobRecord,
    JobState,
    Judgement,
    Ledger,
    ReviewRecord,
    Unchecked,
)
from mirrago.ledger import ReviewConflict as ReviewConflict  # give_verdict raises it

PASS = "pass"
FAIL = "fail"
VERDICTS = (PASS, FAIL)
# How every page shows a verdict: its word, badge colour and icon (one table for all of them).
VERDICT_BADGES: dict[str, tuple[str, str, str]] = {
    PASS: ("Pass", "green", ":material/check:"),
    FAIL: ("Fail", "red", ":material/close:"),
}
UNREVIEWED = "unreviewed"

# Reason tags, in the order of their number keys (1 … 6).
REASONS: dict[str, str] = {
    "garment-distorted": "Garment distorted",
    "wrong-garment": "Wrong garment",
    "artifacts": "Artifacts",
    "face-body-changed": "Face or body changed",
    "background-wrong": "Background wrong",
    "other": "Other",
}

LEFT, RIGHT, SAME = "left", "right", "same"
JUDGEMENTS: dict[str, str] = {LEFT: "Left better", RIGHT: "Right better", SAME: "Same"}


class ReviewError(MirragoError):
    """A verdict that cannot be given as asked (one line, saying what to do)."""


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


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Rate:
    """How one input (a person, a garment) fared: `passed` of `reviewed`."""

    value: str
    passed: int
    reviewed: int

    @property
    def rate(self) -> float:
        return self.passed / self.reviewed if self.reviewed else 0.0


@dataclass(frozen=True)
class Summary:
    reviewed: int
    reviewable: int
    passed: int
    failed: int
    reasons: dict[str, int]  # every reason, in REASONS order, zero included
    median_seconds: float | None
    worst_garments: list[Rate]
    worst_persons: list[Rate]
    reviewers: list[str] = field(default_factory=list)

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.reviewed if self.reviewed else None


def summarize(
    jobs: Sequence[JobRecord], history: Iterable[ReviewRecord] = (), *, worst: int = 3
) -> Summary:
    """Reviewed n of m, pass rate, counts per reason, median seconds per review, worst inputs."""
    done = [job for job in jobs if reviewable(job)]
    reviewed = [job for job in done if job.review_verdict in VERDICTS]
    passed = sum(job.review_verdict == PASS for job in reviewed)
    reasons = {reason: 0 for reason in REASONS}
    for job in reviewed:
        if job.review_verdict == FAIL:
            for tag in job.review_tags:
                if tag in reasons:
                    reasons[tag] += 1
    current = current_reviews(history, jobs)
    seconds = [r.seconds for r in current.values() if r.seconds is not None]
    reviewers = sorted({r.reviewer for r in current.values() if r.reviewer})
    return Summary(
        reviewed=len(reviewed),
        reviewable=len(done),
        passed=passed,
        failed=len(reviewed) - passed,
        reasons=reasons,
        median_seconds=statistics.median(seconds) if seconds else None,
        worst_garments=_worst(reviewed, "garment", worst),
        worst_persons=_worst(reviewed, "target", worst),
        reviewers=reviewers,
    )


def _worst(reviewed: Sequence[JobRecord], side: str, limit: int) -> list[Rate]:
    """The inputs with the lowest pass rate (most reviews first among equals); only those
    with at least one fail."""
    tally: dict[str, list[int]] = {}
    for job in reviewed:
        counts = tally.setdefault(getattr(job, side), [0, 0])
        counts[0] += job.review_verdict == PASS
        counts[1] += 1
    rates = [Rate(value, p, n) for value, (p, n) in tally.items() if p < n]
    rates.sort(key=lambda r: (r.rate, -r.reviewed, r.value))
    return rates[:limit]


# --------------------------------------------------------------------------- matrix


@dataclass(frozen=True)
class Matrix:
    """Persons as rows, garments as columns (in order of first appearance), one job a cell."""

    persons: list[str]
    garments: list[str]
    cells: dict[tuple[str, str], JobRecord]

    def cell(self, person: str, garment: str) -> JobRecord | None:
        return self.cells.get((person, garment))

    def person_rate(self, person: str) -> Rate:
        return _rate(person, [self.cells.get((person, g)) for g in self.garments])

    def garment_rate(self, garment: str) -> Rate:
        return _rate(garment, [self.cells.get((p, garment)) for p in self.persons])


def has_matrix(jobs: Iterable[JobRecord]) -> bool:
    """A matrix is worth showing when a batch has several persons and several garments."""
    jobs = list(jobs)
    return len({j.target for j in jobs}) > 1 and len({j.garment for j in jobs}) > 1


def build_matrix(jobs: Iterable[JobRecord]) -> Matrix:
    """The first row of each (person, garment) pair fills its cell."""
    persons: dict[str, None] = {}
    garments: dict[str, None] = {}
    cells: dict[tuple[str, str], JobRecord] = {}
    for job in sorted(jobs, key=lambda j: j.row_index):
        persons.setdefault(job.target)
        garments.setdefault(job.garment)
        cells.setdefault((job.target, job.garment), job)
    return Matrix(list(persons), list(garments), cells)


def _rate(value: str, jobs: Iterable[JobRecord | None]) -> Rate:
    reviewed = [j for j in jobs if j is not None and reviewable(j) and j.review_verdict in VERDICTS]
    return Rate(value, sum(j.review_verdict == PASS for j in reviewed), len(reviewed))


# --------------------------------------------------------------------------- comparing runs


def pair_key(job: JobRecord) -> str:
    """What makes two rows "the same pair": the person, the garment and the background."""
    return json.dumps([job.target, job.garment, job.background or ""])


@dataclass(frozen=True)
class ComparedPair:
    key: str
    left: JobRecord
    right: JobRecord
    judgement: str | None  # LEFT, RIGHT, SAME or None (not judged yet)

    @property
    def verdict_change(self) -> str:
        """ "fixed" (fail → pass), "broke" (pass → fail), "same" or "unknown" (not both
        reviewed)."""
        before, after = self.left.review_verdict, self.right.review_verdict
        if before not in VERDICTS or after not in VERDICTS:
            return "unknown"
        if before == after:
            return "same"
        return "fixed" if after == PASS else "broke"


@dataclass(frozen=True)
class ComparisonSummary:
    shared: int
    judged: int
    improved: int  # the right (newer) run is better
    regressed: int  # the left (older) run is better
    unchanged: int
    fixed: int  # verdict fail → pass
    broke: int  # verdict pass → fail
    same_verdict: int
    unknown_verdict: int


def shared_pairs(
    left: Sequence[JobRecord], right: Sequence[JobRecord], judgements: dict[str, Judgement]
) -> list[ComparedPair]:
    """The pairs both batches ran (first row of each pair on each side), in the left's order."""
    right_by_key: dict[str, JobRecord] = {}
    for job in sorted(right, key=lambda j: j.row_index):
        right_by_key.setdefault(pair_key(job), job)
    pairs: list[ComparedPair] = []
    seen: set[str] = set()
    for job in sorted(left, key=lambda j: j.row_index):
        key = pair_key(job)
        if key in seen or key not in right_by_key:
            continue
        seen.add(key)
        judged = judgements.get(key)
        pairs.append(
            ComparedPair(key, job, right_by_key[key], judged.judgement if judged else None)
        )
    return pairs


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


def summarize_comparison(pairs: Sequence[ComparedPair]) -> ComparisonSummary:
    changes = [pair.verdict_change for pair in pairs]
    return ComparisonSummary(
        shared=len(pairs),
        judged=sum(pair.judgement is not None for pair in pairs),
        improved=sum(pair.judgement == RIGHT for pair in pairs),
        regressed=sum(pair.judgement == LEFT for pair in pairs),
        unchanged=sum(pair.judgement == SAME for pair in pairs),
        fixed=changes.count("fixed"),
        broke=changes.count("broke"),
        same_verdict=changes.count("same"),
        unknown_verdict=changes.count("unknown"),
    )


def next_unjudged(pairs: Sequence[ComparedPair], current: str | None) -> ComparedPair | None:
    start = next((i for i, pair in enumerate(pairs) if pair.key == current), -1)
    for pair in [*pairs[start + 1 :], *pairs[: start + 1]]:
        if pair.judgement is None and pair.key != current:
            return pair
    return None


# --------------------------------------------------------------------------- labels


def input_label(value: str) -> str:
    """A short name for an input (a person, a garment): a sample's title, else the file name
    of its path or URL."""
    parts = urlsplit(value)
    path = Path(unquote(parts.path) if parts.scheme in ("http", "https") else value)
    sample = _sample_files().get((path.parent.name, path.name))
    if sample is not None:
        return sample.title
    return path.name or parts.netloc or value


def sample_file(value: str) -> Path | None:
    """The shipped sample file an input names (a sandbox `/samples/...` URL or a sample's
    path)."""
    parts = urlsplit(value)
    path = Path(unquote(parts.path) if parts.scheme in ("http", "https") else value)
    if parts.scheme in ("http", "https") and path.parent.parent != Path("/samples"):
        return None
    sample = _sample_files().get((path.parent.name, path.name))
    return sample.path if sample else None


@functools.cache
def _sample_files() -> dict[tuple[str, str], Any]:
    from mirrago import samples

    return {
        (sample.path.parent.name, sample.path.name): sample
        for sample in samples.persons() + samples.garments()
    }


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.0f}%"
