"""How the flags agree with the human verdicts given so far: per flag, how many flagged results a
reviewer failed (precision) and how many failed results were flagged (recall), with the counts.

The checks never give a verdict; this only says how far to trust them. Shown once at least
`MIN_VERDICTS` checked results have a verdict: fewer make the shares noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mirrago.ledger import JobRecord, TriageRecord
from mirrago.triage.flags import FLAG_CODES, label

MIN_VERDICTS = 15
PASS, FAIL = "pass", "fail"  # the verdicts of mirrago.review (checked there)


@dataclass(frozen=True)
class FlagAgreement:
    """One flag (or "any flag") against the verdicts: `flagged` results with a verdict, of
    which `flagged_failed` were failed; `failed` results, of which `failed_flagged` flagged."""

    code: str
    label: str
    flagged: int
    flagged_failed: int
    failed: int
    failed_flagged: int

    @property
    def precision(self) -> float | None:
        return self.flagged_failed / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.failed_flagged / self.failed if self.failed else None


@dataclass(frozen=True)
class Agreement:
    """The flags against the verdicts of `judged` checked results (`failed` of them failed)."""

    judged: int
    failed: int
    flags: tuple[FlagAgreement, ...]
    any_flag: FlagAgreement

    @property
    def enough(self) -> bool:
        return self.judged >= MIN_VERDICTS


def agreement(rows: Sequence[JobRecord], findings: Mapping[int, TriageRecord]) -> Agreement:
    """The agreement over `rows` that have a pass/fail verdict and a check of their result."""
    judged = [
        (row.review_verdict == FAIL, set(findings[row.id].flags))
        for row in rows
        if row.review_verdict in (PASS, FAIL) and row.id in findings and findings[row.id].checked
    ]
    failed = sum(fail for fail, _ in judged)

    def count(code: str, name: str, flagged_if) -> FlagAgreement:
        flagged = [fail for fail, flags in judged if flagged_if(flags)]
        hits = sum(flagged)
        return FlagAgreement(code, name, len(flagged), hits, failed, hits)

    per_flag = tuple(
        count(code, label(code), lambda flags, c=code: c in flags) for code in FLAG_CODES
    )
    return Agreement(len(judged), failed, per_flag, count("any", "Any flag", bool))
