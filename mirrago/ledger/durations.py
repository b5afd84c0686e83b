"""How long jobs take on each backend, kept so a new runner starts informed: the latest
submit -> done durations its poll schedule saw, and how many jobs the server ran at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mirrago.ledger.records import utcnow
from mirrago.ledger.schema import job_durations

KEPT_PER_BACKEND = 500  # the running distribution: older durations are dropped


@dataclass(frozen=True)
class DurationHistory:
    """A backend's recent durations (seconds, oldest first) and parallelism (None: unseen)."""

    seconds: list[float]
    parallel: int | None


class DurationsMixin:
    """`Ledger`'s methods for job durations (see `mirrago.ledger.store.Ledger`)."""

    _write: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[[], AbstractContextManager[Connection]]

    def record_durations(
        self, backend: str, seconds: Sequence[float], parallel: int | None = None
    ) -> None:
        """Add durations seen on `backend` (and its parallelism as seen now); keep the latest
        KEPT_PER_BACKEND."""
        if not seconds:
            return
        now = utcnow()
        rows = [
            {"backend": backend, "seconds": float(value), "parallel": parallel, "at": now}
            for value in seconds
        ]
        with self._write() as conn:
            conn.execute(job_durations.insert(), rows)
            cutoff = conn.execute(
                sa.select(job_durations.c.id)
                .where(job_durations.c.backend == backend)
                .order_by(job_durations.c.id.desc())
                .offset(KEPT_PER_BACKEND)
                .limit(1)
            ).scalar()
            if cutoff is not None:
                conn.execute(
                    job_durations.delete().where(
                        job_durations.c.backend == backend, job_durations.c.id <= cutoff
                    )
                )

    def duration_history(self, backend: str) -> DurationHistory:
        """What jobs took on `backend` lately (empty for a backend never used)."""
        query = (
            sa.select(job_durations.c.seconds, job_durations.c.parallel)
            .where(job_durations.c.backend == backend)
            .order_by(job_durations.c.id.desc())
            .limit(KEPT_PER_BACKEND)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        parallel = next((row.parallel for row in rows if row.parallel is not None), None)
        return DurationHistory([row.seconds for row in reversed(rows)], parallel)

    def forget_durations(self, backend: str) -> None:
        """Start `backend`'s history afresh (its server changed)."""
        with self._write() as conn:
            conn.execute(job_durations.delete().where(job_durations.c.backend == backend))
