"""Review figures: reviewed n of m, the pass rate, fails per reason, the worst inputs, the
person × garment matrix, and how an input and a rate are written for people."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mirrago import samples
from mirrago.ledger import JobRecord, ReviewRecord
from mirrago.review.rules import FAIL, PASS, REASONS, VERDICTS, current_reviews, reviewable

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


# --------------------------------------------------------------------------- labels


def input_label(value: str) -> str:
    """A short name for an input (a person, a garment): a sample's title, else the file name
    of its path or URL."""
    sample = samples.lookup(value)
    if sample is not None:
        return sample.title
    parts = urlsplit(value)
    path = Path(unquote(parts.path) if parts.scheme in ("http", "https") else value)
    return path.name or parts.netloc or value


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.0f}%"
