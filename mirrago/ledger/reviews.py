"""Reviews on the ledger: verdicts on results, their history, and judgements of two runs.

The jobs table holds each row's current verdict; the `reviews` table keeps every verdict ever
given (undone ones marked, a retry keeps them). The rules of a verdict (which words, what a
reviewer may do) live in `mirrago.review`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mirrago.errors import ReviewConflict
from mirrago.ledger.records import JobState, Judgement, ReviewRecord, review_record, utcnow
from mirrago.ledger.schema import comparisons, jobs, reviews


class Unchecked(enum.Enum):
    """`record_review(expected_review_id=UNCHECKED)`: apply whatever the row holds now (a CLI
    or a script that drew no view of the row)."""

    UNCHECKED = "unchecked"


UNCHECKED = Unchecked.UNCHECKED


class ReviewsMixin:
    """`Ledger`'s methods for reviews (see `mirrago.ledger.store.Ledger`)."""

    _write: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[[], AbstractContextManager[Connection]]

    def record_review(
        self,
        row_id: int,
        verdict: str,
        reasons: Sequence[str] = (),
        note: str | None = None,
        *,
        reviewer: str | None = None,
        seconds: float | None = None,
        expected_review_id: int | None | Unchecked = UNCHECKED,
    ) -> ReviewRecord | None:
        """Give the row's current attempt a verdict: it becomes the row's review and is added to
        its history. None when the row does not exist. (Checks: `mirrago.review`.)

        `expected_review_id` is the row's review the reviewer saw (None: it was unreviewed).
        When the row holds another verdict now, nothing is written and `ReviewConflict` names
        it; a verdict seen and undone since overwrites nobody, so it is applied. The check and
        the write are one transaction, the row locked (PostgreSQL) or the file (SQLite)."""
        now = utcnow()
        clean = list(dict.fromkeys(str(r).strip() for r in reasons if str(r).strip()))
        with self._write() as conn:
            attempt = self._lock_attempt(conn, row_id)
            if attempt is None:
                return None
            current = _current_review(conn, row_id, attempt)
            if (
                expected_review_id is not UNCHECKED
                and current is not None
                and current.id != expected_review_id
            ):
                raise ReviewConflict(current)
            conn.execute(
                jobs.update()
                .where(jobs.c.id == row_id)
                .values(
                    review_verdict=verdict,
                    review_note=note,
                    review_tags=json.dumps(clean),
                    updated_at=now,
                )
            )
            review_id = conn.execute(
                reviews.insert().values(
                    row_id=row_id,
                    attempt=attempt,
                    verdict=verdict,
                    reasons=json.dumps(clean),
                    note=note,
                    reviewer=reviewer,
                    at=now,
                    seconds=seconds,
                    undone=False,
                )
            ).inserted_primary_key[0]
        return ReviewRecord(
            int(review_id),
            row_id,
            attempt,
            verdict,
            tuple(clean),
            note,
            reviewer,
            now,
            seconds,
            False,
        )

    def undo_review(
        self, row_id: int, *, reviewer: str | None, review_id: int | None = None
    ) -> ReviewRecord | None:
        """Take back `reviewer`'s verdict on the row's current attempt (and, when given, only
        the verdict `review_id`), if it is still the row's latest: the row returns to the
        verdict before it (or to none). Returns the verdict undone, None when the row has none.
        When someone else judged the row since, nothing changes: `ReviewConflict` names them."""
        with self._write() as conn:
            attempt = self._lock_attempt(conn, row_id)
            live = (
                reviews.select()
                .where(
                    reviews.c.row_id == row_id,
                    reviews.c.attempt == attempt,
                    reviews.c.undone == sa.false(),
                )
                .order_by(reviews.c.id.desc())
                .limit(2)
            )
            found = list(conn.execute(live))
            if not found:
                return None
            latest = review_record(found[0])
            if latest.reviewer != reviewer or review_id not in (None, latest.id):
                raise ReviewConflict(latest)
            conn.execute(reviews.update().where(reviews.c.id == latest.id).values(undone=True))
            before = found[1] if len(found) > 1 else None
            conn.execute(
                jobs.update()
                .where(jobs.c.id == row_id)
                .values(
                    review_verdict=before.verdict if before else None,
                    review_note=before.note if before else None,
                    review_tags=before.reasons if before else "[]",
                    updated_at=utcnow(),
                )
            )
        return replace(latest, undone=True)

    def review_tallies(self, batch_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
        """Batch id → (results given Pass, results reviewed), for batches with a verdict."""
        passed = sa.func.sum(sa.case((jobs.c.review_verdict == "pass", 1), else_=0))
        query = (
            sa.select(jobs.c.batch_id, passed, sa.func.count())
            .where(
                jobs.c.batch_id.in_(list(batch_ids)),
                jobs.c.state == JobState.COMPLETED.value,
                jobs.c.review_verdict.in_(["pass", "fail"]),
            )
            .group_by(jobs.c.batch_id)
        )
        with self._read() as conn:
            return {int(b): (int(p or 0), int(n)) for b, p, n in conn.execute(query)}

    def current_review_ids(self, batch_id: int) -> dict[int, int]:
        """Row id → the id of the verdict each reviewed row of the batch holds now (the latest
        on its current attempt not undone): what a page saw, for `record_review`."""
        query = (
            sa.select(reviews.c.row_id, sa.func.max(reviews.c.id))
            .join(
                jobs, sa.and_(jobs.c.id == reviews.c.row_id, jobs.c.attempts == reviews.c.attempt)
            )
            .where(jobs.c.batch_id == batch_id, reviews.c.undone == sa.false())
            .group_by(reviews.c.row_id)
        )
        with self._read() as conn:
            return {int(row_id): int(review_id) for row_id, review_id in conn.execute(query)}

    @staticmethod
    def _lock_attempt(conn: Connection, row_id: int) -> int | None:
        """The row's current attempt, the row locked until the transaction ends (PostgreSQL:
        two reviewers' checks then run one after the other; SQLite's write lock does it)."""
        query = sa.select(jobs.c.attempts).where(jobs.c.id == row_id).with_for_update()
        attempt = conn.execute(query).scalar()
        return None if attempt is None else int(attempt)

    def reviews(
        self, *, batch_id: int | None = None, row_id: int | None = None
    ) -> list[ReviewRecord]:
        """The review history, oldest first (undone verdicts included, marked)."""
        query = reviews.select().order_by(reviews.c.id)
        if row_id is not None:
            query = query.where(reviews.c.row_id == row_id)
        if batch_id is not None:
            query = query.where(
                reviews.c.row_id.in_(sa.select(jobs.c.id).where(jobs.c.batch_id == batch_id))
            )
        with self._read() as conn:
            return [review_record(row) for row in conn.execute(query)]

    def save_judgement(
        self,
        left_batch_id: int,
        right_batch_id: int,
        pair_key: str,
        judgement: str | None,
        *,
        reviewer: str | None = None,
    ) -> None:
        """Record (or, with None, clear) the judgement of one shared pair of two batches."""
        where = sa.and_(
            comparisons.c.left_batch_id == left_batch_id,
            comparisons.c.right_batch_id == right_batch_id,
            comparisons.c.pair_key == pair_key,
        )
        with self._write() as conn:
            conn.execute(comparisons.delete().where(where))
            if judgement is not None:
                conn.execute(
                    comparisons.insert().values(
                        left_batch_id=left_batch_id,
                        right_batch_id=right_batch_id,
                        pair_key=pair_key,
                        judgement=judgement,
                        reviewer=reviewer,
                        at=utcnow(),
                    )
                )

    def judgements(self, left_batch_id: int, right_batch_id: int) -> dict[str, Judgement]:
        query = comparisons.select().where(
            comparisons.c.left_batch_id == left_batch_id,
            comparisons.c.right_batch_id == right_batch_id,
        )
        with self._read() as conn:
            return {
                row.pair_key: Judgement(
                    int(row.left_batch_id),
                    int(row.right_batch_id),
                    row.pair_key,
                    row.judgement,
                    row.reviewer,
                    row.at,
                )
                for row in conn.execute(query)
            }


def _current_review(conn: Connection, row_id: int, attempt: int) -> ReviewRecord | None:
    """The verdict the row holds now: the latest on its current attempt not undone."""
    query = (
        reviews.select()
        .where(
            reviews.c.row_id == row_id,
            reviews.c.attempt == attempt,
            reviews.c.undone == sa.false(),
        )
        .order_by(reviews.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return review_record(row) if row else None
