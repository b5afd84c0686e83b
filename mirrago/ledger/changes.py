"""Whether a batch changed since a given point, asked cheaply: a page reads a batch's rows once
per change, not on every rerun (a reviewer's key press).

`batch_version` is a fingerprint of everything a write to a batch leaves behind: its rows'
count and latest `updated_at` (every move, claim, verdict, undo, retry and deletion sets it or
removes a row), its reviews' count and its name and paused flag. Two reads with no write between
them give equal versions; a write gives a different one. Nothing is written to keep it, so
runners and reviewers never contend for a counter row.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mirrago.ledger.schema import batches, jobs, reviews


@dataclass(frozen=True)
class BatchVersion:
    """A point in a batch's history (compare with `==`; None fields: the batch is gone)."""

    rows: int
    last_update: str | None
    reviews: int
    name: str | None
    paused: bool | None


class ChangesMixin:
    """`Ledger`'s change counter (see `mirrago.ledger.store.Ledger`)."""

    _read: Callable[[], AbstractContextManager[Connection]]

    def batch_version(self, batch_id: int) -> BatchVersion:
        """The batch's version now: three indexed aggregate reads, one transaction."""
        in_batch = jobs.c.batch_id == batch_id
        with self._read() as conn:
            count, last = conn.execute(
                sa.select(sa.func.count(), sa.func.max(jobs.c.updated_at)).where(in_batch)
            ).one()
            judged = conn.execute(
                sa.select(sa.func.count())
                .select_from(reviews.join(jobs, reviews.c.row_id == jobs.c.id))
                .where(in_batch)
            ).scalar()
            batch = conn.execute(
                sa.select(batches.c.name, batches.c.paused).where(batches.c.id == batch_id)
            ).first()
        return BatchVersion(
            rows=int(count or 0),
            last_update=None if last is None else last.isoformat(),
            reviews=int(judged or 0),
            name=None if batch is None else batch.name,
            paused=None if batch is None else bool(batch.paused),
        )

    def batch_changed(self, batch_id: int, since: BatchVersion | None) -> bool:
        """Whether the batch changed after `since` was read (None: never read, so yes)."""
        return since is None or self.batch_version(batch_id) != since
