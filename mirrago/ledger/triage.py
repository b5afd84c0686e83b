"""The quality checks' findings on the ledger: one record per row's result (the latest), with the
checks' version, so results scored by older checks can be found and scored again.

The checks themselves live in `mirrago.triage`; this module only stores and reads what they
found. Checks never give a verdict: these records sit beside the review, never in it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mirrago.ledger.records import JobRecord, JobState, job_record, utcnow
from mirrago.ledger.schema import jobs, triage_results


@dataclass(frozen=True)
class TriageRecord:
    """What the checks found on one row's result: `score` 0…1 and `flags` (codes), each check's
    value; or `not_checked` with the reason (then `score` is None)."""

    row_id: int
    attempt: int
    checks_version: int
    score: float | None
    flags: tuple[str, ...]
    values: dict[str, float | None] = field(default_factory=dict)
    not_checked: str | None = None
    at: datetime | None = None

    @property
    def checked(self) -> bool:
        return self.not_checked is None

    @property
    def score_text(self) -> str:
        """The score as the CSVs carry it: two decimals, empty when not checked."""
        return "" if self.score is None else f"{self.score:.2f}"

    @property
    def flags_text(self) -> str:
        """The flags as the CSVs carry them: codes joined by `;`."""
        return ";".join(self.flags)


def triage_record(row: Any) -> TriageRecord:
    try:
        flags = tuple(str(code) for code in json.loads(row.flags or "[]"))
    except ValueError:
        flags = ()
    try:
        values = {
            str(k): (None if v is None else float(v))
            for k, v in json.loads(row.check_values or "{}").items()
        }
    except (ValueError, AttributeError, TypeError):
        values = {}
    return TriageRecord(
        row_id=int(row.row_id),
        attempt=int(row.attempt),
        checks_version=int(row.checks_version),
        score=None if row.score is None else float(row.score),
        flags=flags,
        values=values,
        not_checked=row.not_checked,
        at=row.at,
    )


class TriageMixin:
    """`Ledger`'s methods for the quality checks (see `mirrago.ledger.store.Ledger`)."""

    _write: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[[], AbstractContextManager[Connection]]

    def record_triage(
        self,
        row_id: int,
        *,
        checks_version: int,
        score: float | None,
        flags: Sequence[str] = (),
        values: dict[str, float | None] | None = None,
        not_checked: str | None = None,
        attempt: int | None = None,
    ) -> TriageRecord | None:
        """Store what the checks found on the row's result (replacing what older checks found).
        `attempt` is the row's attempt that was checked (default: its current one). None when
        the row does not exist."""
        with self._write() as conn:
            current = conn.execute(sa.select(jobs.c.attempts).where(jobs.c.id == row_id)).scalar()
            if current is None:
                return None
            record = {
                "row_id": row_id,
                "attempt": int(attempt if attempt is not None else current),
                "checks_version": int(checks_version),
                "score": None if score is None else round(float(score), 4),
                "flags": json.dumps(list(flags)),
                "check_values": json.dumps(
                    {
                        k: (None if v is None else round(float(v), 4))
                        for k, v in (values or {}).items()
                    }
                ),
                "not_checked": not_checked,
                "at": utcnow(),
            }
            conn.execute(triage_results.delete().where(triage_results.c.row_id == row_id))
            conn.execute(triage_results.insert().values(**record))
        return triage_record(_Values(record))

    def triage(self, row_id: int) -> TriageRecord | None:
        """The checks' findings on the row's current result (None: not checked yet, or only an
        earlier attempt's result was)."""
        found = self.batch_triage(row_ids=[row_id])
        return found.get(row_id)

    def batch_triage(
        self, batch_id: int | None = None, *, row_ids: Iterable[int] | None = None
    ) -> dict[int, TriageRecord]:
        """The findings on the current results of a batch's rows (or of `row_ids`), by row id.
        A finding on an earlier attempt (the row was retried since) is left out."""
        query = sa.select(triage_results).join(
            jobs,
            sa.and_(
                jobs.c.id == triage_results.c.row_id, jobs.c.attempts == triage_results.c.attempt
            ),
        )
        if batch_id is not None:
            query = query.where(jobs.c.batch_id == batch_id)
        if row_ids is not None:
            query = query.where(triage_results.c.row_id.in_(list(row_ids)))
        with self._read() as conn:
            return {int(row.row_id): triage_record(row) for row in conn.execute(query)}

    def waiting_for_checks(self, batch_id: int, since: datetime) -> int:
        """How many of the batch's results stored since `since` the checks have not seen yet
        (the background checker is likely still on them)."""
        with self._read() as conn:
            return int(conn.execute(_unchecked_since(batch_id, since)).scalar() or 0)

    def rows_to_triage(self, batch_id: int, *, older_than: int | None = None) -> list[JobRecord]:
        """The batch's completed rows with a stored result, in row order: every one, or (with
        `older_than`) those not checked yet or checked by a version below it."""
        query = (
            sa.select(jobs)
            .where(
                jobs.c.batch_id == batch_id,
                jobs.c.state == JobState.COMPLETED.value,
                jobs.c.result_path.is_not(None),
            )
            .order_by(jobs.c.row_index)
        )
        if older_than is not None:
            current = sa.select(triage_results.c.row_id).where(
                triage_results.c.row_id == jobs.c.id,
                triage_results.c.attempt == jobs.c.attempts,
                triage_results.c.checks_version >= older_than,
            )
            query = query.where(~sa.exists(current))
        with self._read() as conn:
            return [job_record(row) for row in conn.execute(query)]


def _unchecked_since(batch_id: int, since: datetime) -> sa.Select:
    checked = sa.select(triage_results.c.row_id).where(
        triage_results.c.row_id == jobs.c.id, triage_results.c.attempt == jobs.c.attempts
    )
    return sa.select(sa.func.count()).where(
        jobs.c.batch_id == batch_id,
        jobs.c.state == JobState.COMPLETED.value,
        jobs.c.result_path.is_not(None),
        jobs.c.finished_at >= since,
        ~sa.exists(checked),
    )


class _Values:
    """A dict read like a table row (what `record_triage` just wrote)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
