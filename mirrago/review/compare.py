"""Comparing two runs of the same pairs: which pairs both batches ran, the judgement of each
(left better, right better, same) and how the verdicts changed. No UI and no SQL here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from mirrago.ledger import JobRecord, Judgement
from mirrago.review.rules import PASS, VERDICTS

LEFT, RIGHT, SAME = "left", "right", "same"
JUDGEMENTS: dict[str, str] = {LEFT: "Left better", RIGHT: "Right better", SAME: "Same"}


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
