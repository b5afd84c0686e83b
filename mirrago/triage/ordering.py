"""The review order the checks give: most suspect first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mirrago.ledger import JobRecord, TriageRecord


def most_suspect_first(
    rows: Sequence[JobRecord], findings: Mapping[int, TriageRecord]
) -> list[JobRecord]:
    """`rows` by suspect score, highest first; results not checked (yet) after every scored
    one; ties keep their order in `rows` (the queue's oldest first, the gallery's row order)."""

    def key(row: JobRecord) -> tuple[int, float]:
        found = findings.get(row.id)
        if found is None or found.score is None:
            return (1, 0.0)
        return (0, -found.score)

    return sorted(rows, key=key)
