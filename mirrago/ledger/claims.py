"""The runner's moves on the ledger: claim, submit, finish; and runners' registration and liveness.

Every move is one committed UPDATE guarded by the states the row may come from and by the
runner that claimed it, so two processes can never both move a row. Runners register with a
heartbeat in the `runners` table: that is how a runner tells a crashed owner's rows from a live
one's. Their only caller is `mirrago.runner`.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mirrago.errors import uncertain_text
from mirrago.ledger.records import JobRecord, JobState, Recovery, job_record, utcnow
from mirrago.ledger.schema import (
    add_event,
    claimable,
    credit_readings,
    in_scope,
    jobs,
    move,
    runners,
)
from mirrago.models import Submission

HOST = socket.gethostname()

# Runner ids registered by live runners of this process: a row claimed by a runner id of this
# process that is not here belongs to a runner that stopped.
_LIVE_RUNNERS: set[str] = set()
_LIVE_LOCK = threading.Lock()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    except OSError:
        return True
    return True


def _zombie(pid: int) -> bool:
    """A killed child that its parent has not reaped yet still answers kill(pid, 0)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class ClaimsMixin:
    """`Ledger`'s methods for runners (see `mirrago.ledger.store.Ledger`)."""

    _write: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[[], AbstractContextManager[Connection]]

    # ------------------------------------------------------------------ runners

    def register_runner(self, runner_id: str) -> None:
        now = utcnow()
        with _LIVE_LOCK:
            _LIVE_RUNNERS.add(runner_id)
        with self._write() as conn:
            conn.execute(runners.delete().where(runners.c.id == runner_id))
            conn.execute(
                runners.insert().values(
                    id=runner_id, host=HOST, pid=os.getpid(), started_at=now, heartbeat_at=now
                )
            )

    def heartbeat(self, runner_id: str) -> None:
        with self._write() as conn:
            conn.execute(
                runners.update().where(runners.c.id == runner_id).values(heartbeat_at=utcnow())
            )

    def unregister_runner(self, runner_id: str) -> None:
        with _LIVE_LOCK:
            _LIVE_RUNNERS.discard(runner_id)
        with self._write() as conn:
            conn.execute(runners.delete().where(runners.c.id == runner_id))

    def recover(
        self,
        runner_id: str,
        *,
        backend: str,
        stale_after: float = 15.0,
        batch_ids: Iterable[int] | None = None,
    ) -> Recovery:
        """Clean up after runners of `backend` that are gone (crashed, killed, stopped).

        A claimed row's owner is gone when it is not registered, its heartbeat is older than
        `stale_after`, or it ran on this host under a pid that no longer exists. Their
        `submitting` rows become `uncertain` (the POST may or may not have reached the server);
        their `submitted` rows (in `batch_ids`, when given) are adopted by `runner_id`. Rows
        of other backends are left to their own runners.
        """
        mine = jobs.c.backend == backend
        now = utcnow()
        with self._write() as conn:
            live = {row.id: row for row in conn.execute(runners.select())}
            owners = conn.execute(
                sa.select(jobs.c.claimed_by)
                .where(
                    mine,
                    jobs.c.state.in_([JobState.SUBMITTING.value, JobState.SUBMITTED.value]),
                )
                .distinct()
            ).scalars()
            gone = [
                owner
                for owner in owners
                if owner != runner_id and not _owner_alive(live.get(owner), owner, now, stale_after)
            ]
            for owner in gone:
                if owner in live:
                    conn.execute(runners.delete().where(runners.c.id == owner))
            orphaned = sa.and_(mine, _claimed_by_any(gone))
            caught = conn.execute(
                sa.select(jobs.c.id, jobs.c.claimed_by).where(
                    orphaned, jobs.c.state == JobState.SUBMITTING.value
                )
            ).all()
            uncertain_ids = []
            for row_id, owner in caught:
                moved = move(
                    conn,
                    row_id,
                    {JobState.SUBMITTING},
                    state=JobState.UNCERTAIN,
                    finished_at=now,
                    error=uncertain_text("the runner submitting it stopped before the answer"),
                )
                if moved:
                    uncertain_ids.append(row_id)
                    add_event(conn, row_id, "uncertain", {"owner": owner})
            adopt = sa.and_(orphaned, jobs.c.state == JobState.SUBMITTED.value, in_scope(batch_ids))
            adopt_ids = list(conn.execute(sa.select(jobs.c.id).where(adopt)).scalars())
            if adopt_ids:
                conn.execute(
                    jobs.update()
                    .where(jobs.c.id.in_(adopt_ids), adopt)
                    .values(claimed_by=runner_id, claimed_at=now, updated_at=now)
                )
                adopted = [
                    job_record(row)
                    for row in conn.execute(
                        jobs.select()
                        .where(jobs.c.id.in_(adopt_ids), jobs.c.claimed_by == runner_id)
                        .order_by(jobs.c.submitted_at, jobs.c.id)
                    )
                ]
            else:
                adopted = []
        return Recovery(uncertain_ids, adopted)

    def owned(self, runner_id: str, state: JobState) -> list[JobRecord]:
        query = (
            jobs.select()
            .where(jobs.c.claimed_by == runner_id, jobs.c.state == state.value)
            .order_by(jobs.c.submitted_at, jobs.c.id)
        )
        with self._read() as conn:
            return [job_record(row) for row in conn.execute(query)]

    # ------------------------------------------------------------------ the runner's moves

    def has_queued(self, batch_ids: Iterable[int] | None = None, *, backend: str) -> bool:
        query = (
            sa.select(jobs.c.id)
            .where(
                jobs.c.state == JobState.QUEUED.value,
                jobs.c.backend == backend,
                claimable(batch_ids),
            )
            .limit(1)
        )
        with self._read() as conn:
            return conn.execute(query).first() is not None

    def claim_next(
        self, runner_id: str, batch_ids: Iterable[int] | None = None, *, backend: str
    ) -> JobRecord | None:
        """Atomically move the oldest queued row of `backend` to `submitting`, owned by
        `runner_id`.

        The UPDATE is guarded by `state = 'queued'`: when another process claimed the same row
        first, it changes nothing and we try the next candidate. On PostgreSQL the candidate is
        also locked with SKIP LOCKED, so concurrent claimers pick different rows.
        """
        scope = sa.and_(jobs.c.backend == backend, claimable(batch_ids))
        for _ in range(20):
            with self._write() as conn:
                candidate = (
                    sa.select(jobs.c.id)
                    .where(jobs.c.state == JobState.QUEUED.value, scope)
                    .order_by(jobs.c.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                row_id = conn.execute(candidate).scalar()
                if row_id is None:
                    return None
                now = utcnow()
                if move(
                    conn,
                    row_id,
                    {JobState.QUEUED},
                    state=JobState.SUBMITTING,
                    claimed_by=runner_id,
                    claimed_at=now,
                ):
                    return job_record(conn.execute(jobs.select().where(jobs.c.id == row_id)).one())
        return None

    def release(self, row_id: int, runner_id: str) -> bool:
        """Back to `queued`: the submission certainly created no job (a rate limit, say)."""
        with self._write() as conn:
            return move(
                conn,
                row_id,
                {JobState.SUBMITTING},
                owner=runner_id,
                state=JobState.QUEUED,
                claimed_by=None,
                claimed_at=None,
            )

    def record_submission(self, row_id: int, runner_id: str, submission: Submission) -> bool:
        """The server created the job: store its id and the credit reading, in one commit.

        Accepted from `submitting` and also from `uncertain` (a slow answer after another
        runner gave up on us is still the truth). If the row has moved on (a user retried it),
        the job id is kept as an event so it is never lost.
        """
        now = utcnow()
        with self._write() as conn:
            recorded = conn.execute(
                sa.select(jobs.c.job_id, jobs.c.claimed_by).where(jobs.c.id == row_id)
            ).first()
            if recorded is not None and tuple(recorded) == (submission.job_id, runner_id):
                return True  # a retry of a write that did commit: already recorded
            moved = move(
                conn,
                row_id,
                {JobState.SUBMITTING, JobState.UNCERTAIN},
                owner=runner_id,
                state=JobState.SUBMITTED,
                job_id=submission.job_id,
                server_status=submission.raw_status or None,
                cloth_id=submission.cloth_id,
                credits_before=submission.credits_before,
                submitted_at=now,
                finished_at=None,
                error=None,
            )
            if submission.credits_before is not None:
                conn.execute(
                    credit_readings.insert().values(
                        at=now, credits_before=submission.credits_before, job_id=submission.job_id
                    )
                )
            if not moved:
                add_event(conn, row_id, "late_submission", {"job_id": submission.job_id})
        return moved

    def fail_submission(self, row_id: int, runner_id: str, error: str) -> bool:
        """The server refused the submission (nothing was created): `failed`."""
        return self._finish(row_id, runner_id, {JobState.SUBMITTING}, JobState.FAILED, error=error)

    def mark_uncertain(self, row_id: int, runner_id: str, error: str) -> bool:
        return self._finish(
            row_id, runner_id, {JobState.SUBMITTING}, JobState.UNCERTAIN, error=error
        )

    def update_server_status(
        self,
        row_id: int,
        runner_id: str,
        server_status: str,
        *,
        cloth_id: str | None = None,
        result_url: str | None = None,
    ) -> bool:
        values: dict[str, Any] = {"server_status": server_status}
        if cloth_id:
            values["cloth_id"] = cloth_id
        if result_url:
            values["result_url"] = result_url
        with self._write() as conn:
            return move(conn, row_id, {JobState.SUBMITTED}, owner=runner_id, **values)

    def complete(
        self,
        row_id: int,
        runner_id: str,
        *,
        server_status: str | None,
        result_url: str | None,
        result_path: str | None,
        thumbnail_path: str | None,
        error: str | None = None,
    ) -> bool:
        """The job completed; `error` notes a result that could not be fetched."""
        return self._finish(
            row_id,
            runner_id,
            {JobState.SUBMITTED},
            JobState.COMPLETED,
            server_status=server_status,
            result_url=result_url,
            result_path=result_path,
            thumbnail_path=thumbnail_path,
            error=error,
        )

    def fail_job(
        self, row_id: int, runner_id: str, error: str, server_status: str | None = None
    ) -> bool:
        """The server reports the job failed (or no longer knows it)."""
        return self._finish(
            row_id,
            runner_id,
            {JobState.SUBMITTED},
            JobState.FAILED,
            error=error,
            server_status=server_status,
        )

    def _finish(
        self,
        row_id: int,
        runner_id: str,
        from_states: set[JobState],
        state: JobState,
        **values: Any,
    ) -> bool:
        with self._write() as conn:
            return move(
                conn,
                row_id,
                from_states,
                owner=runner_id,
                state=state,
                finished_at=utcnow(),
                **values,
            )


def _claimed_by_any(owners: Sequence[str | None]) -> sa.ColumnElement[bool]:
    named = [owner for owner in owners if owner is not None]
    clauses = []
    if named:
        clauses.append(jobs.c.claimed_by.in_(named))
    if None in owners:
        clauses.append(jobs.c.claimed_by.is_(None))
    return sa.or_(*clauses) if clauses else sa.false()


def _owner_alive(row: Any, owner: str | None, now: datetime, stale_after: float) -> bool:
    if row is None or owner is None:
        return False  # never registered, or unregistered when it stopped
    if now - row.heartbeat_at > timedelta(seconds=stale_after):
        return False
    if row.host == HOST:
        if row.pid == os.getpid():
            with _LIVE_LOCK:
                return owner in _LIVE_RUNNERS
        return _pid_alive(row.pid) and not _zombie(row.pid)
    return True
