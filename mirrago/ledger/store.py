"""The job ledger: `Ledger` opens it, and records and reads batches, jobs and the user's actions.

A SQLite file in the data dir by default (WAL, a busy timeout, foreign keys: safe for the app's
threads and a CLI running beside it); `MIRRAGO_DATABASE_URL` selects any SQLAlchemy URL, and
the SQL here is portable (it runs on PostgreSQL too). Times are stored as naive UTC and
returned as aware UTC datetimes. No secret is ever stored: only inputs as given, job ids and
what the server reported.

Job rows move through `JobState`; every transition is one committed UPDATE guarded by the
states it may come from (`mirrago.ledger.schema.move`). The runner's moves are in
`mirrago.ledger.claims`, reviews in `mirrago.ledger.reviews`: both are part of `Ledger`.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from mirrago.backoff import backoff
from mirrago.config import Settings
from mirrago.ledger.changes import ChangesMixin
from mirrago.ledger.claims import ClaimsMixin
from mirrago.ledger.decks import DecksMixin, deck_files
from mirrago.ledger.durations import DurationsMixin
from mirrago.ledger.records import (
    ACTIVE_STATES,
    FINAL_STATES,
    RETRYABLE_STATES,
    UNKNOWN_BACKEND,
    BatchRecord,
    CreditReading,
    JobEvent,
    JobInput,
    JobRecord,
    JobState,
    LedgerError,
    LedgerUnavailableError,
    batch_record,
    job_record,
    utcnow,
)
from mirrago.ledger.reviews import ReviewsMixin
from mirrago.ledger.schema import (
    add_event,
    batches,
    create_or_upgrade,
    credit_readings,
    in_scope,
    job_events,
    jobs,
    move,
    runners,
    schema_version_table,
)
from mirrago.ledger.triage import TriageMixin

log = logging.getLogger("mirrago.ledger")

OPEN_PATIENCE = 60.0  # seconds opening waits for a SQLite file another process holds


class Ledger(ClaimsMixin, ReviewsMixin, DecksMixin, TriageMixin, ChangesMixin, DurationsMixin):
    """The job ledger at a SQLAlchemy URL. Thread-safe; several processes may share one."""

    def __init__(self, url: str) -> None:
        self._url = sa.engine.make_url(url)
        self._sqlite = self._url.get_backend_name() == "sqlite"
        self.migration_notes: list[str] = []  # what opening this ledger upgraded, for the user
        deadline = time.monotonic() + OPEN_PATIENCE
        for attempt in itertools.count():
            try:
                self._engine = self._create_engine()
                self._migrate()
                return
            except (SQLAlchemyError, LedgerUnavailableError) as error:
                unavailable = isinstance(error, LedgerUnavailableError)
                reason = error.reason if unavailable else _reason(error)
                if hasattr(self, "_engine"):
                    self._engine.dispose()
                # Another process creating or upgrading the same SQLite file holds it (SQLite
                # does not always wait its busy timeout for that): wait a while for it. A
                # server that is down is reported at once.
                busy = self._sqlite and ("locked" in reason or "busy" in reason)
                if unavailable and busy and time.monotonic() < deadline:
                    time.sleep(backoff(attempt, base=0.05, cap=2.0))
                    continue
                raise LedgerError(
                    f"Cannot open the job ledger at {self.display_url}: {reason}. Check "
                    "MIRRAGO_DATABASE_URL (or MIRRAGO_DATA_DIR) and that the database is up."
                ) from None

    @classmethod
    def open(cls, settings: Settings) -> Ledger:
        """The ledger the settings name (the data dir's SQLite file unless a URL is set)."""
        if not settings.database_url:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(settings.ledger_url)

    @property
    def display_url(self) -> str:
        """The URL with any password hidden: fit for messages and logs."""
        return self._url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self._url.get_backend_name()

    def __repr__(self) -> str:
        return f"Ledger({self.display_url!r})"

    def close(self) -> None:
        self._engine.dispose()

    # ------------------------------------------------------------------ engine and schema

    def _create_engine(self) -> Engine:
        if not self._sqlite:
            return sa.create_engine(
                self._url, pool_pre_ping=True, pool_size=10, max_overflow=30, pool_timeout=60
            )
        database = self._url.database or ""
        memory = database in ("", ":memory:")
        # `?timeout=seconds` in the URL: how long a write waits for another process's lock
        # before the call fails (and the runner retries it).
        busy_timeout = float(self._url.query.get("timeout") or 30)
        if not memory:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            self._url,
            poolclass=sa.pool.StaticPool if memory else sa.pool.QueuePool,
            connect_args={"check_same_thread": False, "timeout": busy_timeout},
            **({} if memory else {"pool_size": 10, "max_overflow": 30, "pool_timeout": 60}),
        )

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # A write transaction takes the write lock up front: a deferred one that read first
            # could not upgrade (SQLITE_BUSY without waiting) once another process committed.
            write = connection.get_execution_options().get("mirrago_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction, committed on exit."""
        with self._unavailable_as_error(), self._engine.connect() as conn:
            conn.execution_options(mirrago_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._unavailable_as_error(), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _unavailable_as_error(self) -> Iterator[None]:
        """A database that cannot answer raises `LedgerUnavailableError` (retry later); any
        other database error is a bug and propagates as it is. The pool then reconnects by
        itself (pre-ping on checkout, dead connections invalidated)."""
        try:
            yield
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError) as error:
            raise LedgerUnavailableError(self.display_url, _reason(error)) from error
        except sa.exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise
            raise LedgerUnavailableError(self.display_url, _reason(error)) from error

    def _migrate(self) -> None:
        with self._write() as conn:
            create_or_upgrade(conn, self.display_url, self.migration_notes)
        for note in self.migration_notes:
            log.warning("%s", note)

    def schema_version(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(schema_version_table.c.version)).scalar() or 0)

    # ------------------------------------------------------------------ batches

    def create_batch(
        self,
        name: str,
        source: str,
        inputs: Sequence[JobInput],
        *,
        backend: str,
        private: bool = False,
    ) -> BatchRecord:
        """A new batch with one queued row per input (row_index = position in `inputs`), for
        the server `backend` (a `mirrago.backend.backend_key`): only its runners submit them.

        A `private` batch is only worked by runners limited to it (see `Runner(batch_ids=…)`).
        """
        return self.create_batch_rows(
            name, source, list(enumerate(inputs)), backend=backend, private=private
        )

    def create_batch_rows(
        self,
        name: str,
        source: str,
        rows: Sequence[tuple[int, JobInput]],
        *,
        backend: str,
        private: bool = False,
    ) -> BatchRecord:
        """Like `create_batch`, with explicit row indexes (a CSV's data rows, gaps and all)."""
        now = utcnow()
        with self._write() as conn:
            batch_id = conn.execute(
                batches.insert().values(name=name, source=source, created_at=now, private=private)
            ).inserted_primary_key[0]
            if rows:
                conn.execute(
                    jobs.insert(),
                    [
                        {
                            "batch_id": batch_id,
                            "row_index": index,
                            "target": item.target,
                            "garment": item.garment,
                            "background": item.background,
                            "username": item.username,
                            "owner": item.owner,
                            "state": JobState.QUEUED.value,
                            "backend": backend,
                            "attempts": 1,
                            "review_tags": "[]",
                            "created_at": now,
                            "updated_at": now,
                        }
                        for index, item in rows
                    ],
                )
        return BatchRecord(int(batch_id), name, source, now)

    def batch(self, batch_id: int) -> BatchRecord | None:
        with self._read() as conn:
            row = conn.execute(batches.select().where(batches.c.id == batch_id)).first()
        return batch_record(row) if row else None

    def find_batch(self, source: str) -> BatchRecord | None:
        """The newest batch with that source (the CLI's resolved out-dir, say)."""
        query = (
            batches.select()
            .where(batches.c.source == source)
            .order_by(batches.c.id.desc())
            .limit(1)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return batch_record(row) if row else None

    def batches(self, limit: int | None = None) -> list[BatchRecord]:
        """Batches, newest first."""
        query = batches.select().order_by(batches.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [batch_record(row) for row in conn.execute(query)]

    # ------------------------------------------------------------------ the Batch page

    def batch_owners(self, batch_ids: Iterable[int]) -> dict[int, str]:
        """Who started each batch, with sign-in: its rows' owner; absent when none."""
        query = (
            sa.select(jobs.c.batch_id, sa.func.min(jobs.c.owner))
            .where(jobs.c.batch_id.in_(list(batch_ids)), jobs.c.owner.is_not(None))
            .group_by(jobs.c.batch_id)
        )
        with self._read() as conn:
            return {int(batch_id): owner for batch_id, owner in conn.execute(query)}

    def batch_counts(
        self, batch_ids: Iterable[int] | None = None
    ) -> dict[int, dict[JobState, int]]:
        """Rows by state for each batch (every state present, zero included), in one query."""
        query = sa.select(jobs.c.batch_id, jobs.c.state, sa.func.count()).group_by(
            jobs.c.batch_id, jobs.c.state
        )
        if batch_ids is not None:
            query = query.where(jobs.c.batch_id.in_(list(batch_ids)))
        found: dict[int, dict[JobState, int]] = {}
        with self._read() as conn:
            for batch_id, state, count in conn.execute(query):
                counts = found.setdefault(int(batch_id), {s: 0 for s in JobState})
                counts[JobState(state)] = int(count)
        return found

    def set_batch_paused(self, batch_id: int, paused: bool) -> None:
        """Pause (no runner claims its queued rows; rows in flight finish) or resume a batch."""
        with self._write() as conn:
            conn.execute(batches.update().where(batches.c.id == batch_id).values(paused=paused))

    def rename_batch(self, batch_id: int, name: str) -> None:
        with self._write() as conn:
            conn.execute(batches.update().where(batches.c.id == batch_id).values(name=name))

    def delete_batch(self, batch_id: int) -> list[str] | None:
        """Delete a batch and its rows; returns the file paths its rows named (inputs, results,
        thumbnails) that no other row names, for the caller to remove. None (nothing deleted)
        while a row is being submitted or processed: those answers still have to be recorded."""
        busy = [JobState.SUBMITTING.value, JobState.SUBMITTED.value]
        with self._write() as conn:
            rows = conn.execute(
                sa.select(
                    jobs.c.state,
                    jobs.c.target,
                    jobs.c.garment,
                    jobs.c.result_path,
                    jobs.c.thumbnail_path,
                ).where(jobs.c.batch_id == batch_id)
            ).all()
            if any(row.state in busy for row in rows):
                return None
            named = {value for row in rows for value in row[1:] if value}
            conn.execute(
                job_events.delete().where(
                    job_events.c.row_id.in_(sa.select(jobs.c.id).where(jobs.c.batch_id == batch_id))
                )
            )
            conn.execute(jobs.delete().where(jobs.c.batch_id == batch_id))
            conn.execute(batches.delete().where(batches.c.id == batch_id))
            still_named = deck_files(conn, named)  # a deck plays from them: kept
            if named:
                for column in (
                    jobs.c.target,
                    jobs.c.garment,
                    jobs.c.result_path,
                    jobs.c.thumbnail_path,
                ):
                    still_named.update(
                        conn.execute(sa.select(column).where(column.in_(named))).scalars()
                    )
        return sorted(named - still_named)

    # ------------------------------------------------------------------ reading jobs

    def jobs(
        self,
        *,
        batch_id: int | None = None,
        states: Iterable[JobState] | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[JobRecord]:
        """Rows, in batch then row order (or newest first), optionally filtered."""
        query = jobs.select()
        if batch_id is not None:
            query = query.where(jobs.c.batch_id == batch_id)
        if states is not None:
            query = query.where(jobs.c.state.in_([JobState(s).value for s in states]))
        if newest_first:
            query = query.order_by(jobs.c.id.desc())
        else:
            query = query.order_by(jobs.c.batch_id, jobs.c.row_index, jobs.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [job_record(row) for row in conn.execute(query)]

    def job(self, row_id: int) -> JobRecord | None:
        with self._read() as conn:
            row = conn.execute(jobs.select().where(jobs.c.id == row_id)).first()
        return job_record(row) if row else None

    def counts(self, batch_id: int | None = None) -> dict[JobState, int]:
        """How many rows are in each state (every state present, zero included)."""
        query = sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)
        if batch_id is not None:
            query = query.where(jobs.c.batch_id == batch_id)
        found = {state: 0 for state in JobState}
        with self._read() as conn:
            for state, count in conn.execute(query):
                found[JobState(state)] = int(count)
        return found

    def events(self, row_id: int) -> list[JobEvent]:
        query = job_events.select().where(job_events.c.row_id == row_id).order_by(job_events.c.id)
        with self._read() as conn:
            return [
                JobEvent(row.row_id, row.at, row.kind, json.loads(row.detail or "{}"))
                for row in conn.execute(query)
            ]

    def credit_readings(self, limit: int | None = None) -> list[CreditReading]:
        """Credit readings, oldest first (the newest `limit` of them when a limit is given)."""
        query = credit_readings.select().order_by(
            credit_readings.c.at.desc(), credit_readings.c.id.desc()
        )
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            rows = list(conn.execute(query))
        rows.reverse()
        return [CreditReading(row.at, int(row.credits_before), row.job_id) for row in rows]

    def read_connection(self) -> AbstractContextManager[Connection]:
        """A connection for reports that build their own read-only SQL on these tables (the
        Usage page's figures in `mirrago.usage`)."""
        return self._read()

    # ------------------------------------------------------------------ the user's actions

    def cancel(self, row_id: int) -> bool:
        """Cancel a queued row; False when it is no longer queued (already being submitted)."""
        with self._write() as conn:
            moved = move(
                conn, row_id, {JobState.QUEUED}, state=JobState.CANCELED, finished_at=utcnow()
            )
            if moved:
                add_event(conn, row_id, "canceled", {})
        return moved

    def forget(self, row_id: int) -> JobRecord | None:
        """Delete a finished try-on for its owner: blank its inputs, username, links and file
        paths, and mark it deleted. The row stays (state, timings, credits) so usage figures
        stay right. Returns the row as it was, for removing its files; None when there is no
        such row or it is still in progress."""
        with self._write() as conn:
            row = conn.execute(jobs.select().where(jobs.c.id == row_id)).first()
            if row is None or JobState(row.state) not in FINAL_STATES or row.deleted_at:
                return None
            conn.execute(
                jobs.update()
                .where(jobs.c.id == row_id)
                .values(
                    target="",
                    garment="",
                    username=None,
                    owner=None,
                    error=None,
                    result_url=None,
                    result_path=None,
                    thumbnail_path=None,
                    review_note=None,
                    deleted_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
            add_event(conn, row_id, "deleted", {})
        return job_record(row)

    def uses_file(self, path: str) -> bool:
        """Whether a row not deleted still refers to `path` (as an input or a result), or a
        deck's slide plays from it."""
        query = (
            sa.select(jobs.c.id)
            .where(
                jobs.c.deleted_at.is_(None),
                sa.or_(
                    jobs.c.target == path,
                    jobs.c.garment == path,
                    jobs.c.result_path == path,
                    jobs.c.thumbnail_path == path,
                ),
            )
            .limit(1)
        )
        with self._read() as conn:
            return conn.execute(query).first() is not None or bool(deck_files(conn, [path]))

    def retry(
        self, row_id: int, *, rerun_completed: bool = False, backend: str | None = None
    ) -> bool:
        """Queue a failed or uncertain row again as a new attempt; the old outcome is recorded
        as an event. False when the row is in another state. `rerun_completed` also re-runs a
        completed row (a reviewer's "Run again" on a result that failed review). A row of an
        unknown backend (from before ledgers recorded it) is given `backend`, when one is
        given."""
        allowed = RETRYABLE_STATES | ({JobState.COMPLETED} if rerun_completed else set())
        with self._write() as conn:
            row = conn.execute(jobs.select().where(jobs.c.id == row_id)).first()
            if row is None or JobState(row.state) not in allowed:
                return False
            assign = {}
            if backend is not None and row.backend == UNKNOWN_BACKEND:
                assign["backend"] = backend
            moved = move(
                conn,
                row_id,
                allowed,
                **assign,
                state=JobState.QUEUED,
                attempts=jobs.c.attempts + 1,
                job_id=None,
                server_status=None,
                cloth_id=None,
                credits_before=None,
                submitted_at=None,
                finished_at=None,
                error=None,
                result_url=None,
                result_path=None,
                thumbnail_path=None,
                claimed_by=None,
                claimed_at=None,
                # A new attempt asks for a new verdict; the old one stays in `reviews`.
                review_verdict=None,
                review_note=None,
                review_tags="[]",
            )
            if moved:
                previous = {
                    "attempt": row.attempts,
                    "state": row.state,
                    "job_id": row.job_id,
                    "error": row.error,
                }
                if row.review_verdict:  # a re-run result that had a verdict
                    previous["review_verdict"] = row.review_verdict
                add_event(conn, row_id, "retried", previous)
        return moved

    # ------------------------------------------------------------------ backends

    def unfinished_by_backend(self) -> dict[str, int]:
        """How many queued or in-progress rows each backend has (the unknown one included)."""
        query = (
            sa.select(jobs.c.backend, sa.func.count())
            .where(jobs.c.state.in_([state.value for state in ACTIVE_STATES]))
            .group_by(jobs.c.backend)
        )
        with self._read() as conn:
            return {backend: int(count) for backend, count in conn.execute(query)}

    def assign_backend(
        self,
        backend: str,
        *,
        from_backend: str | None = UNKNOWN_BACKEND,
        batch_id: int | None = None,
    ) -> int:
        """Give the unfinished rows of `from_backend` (by default the unknown one: rows from
        before ledgers recorded it; None: any other backend) to `backend`, so its runners
        submit or poll them. Rows a live runner is submitting or polling are left alone.
        Returns how many rows moved; each gets an event."""
        if from_backend is None:
            source = jobs.c.backend != backend
        else:
            source = jobs.c.backend == from_backend
        where = sa.and_(
            source,
            jobs.c.state.in_([state.value for state in ACTIVE_STATES]),
            in_scope([batch_id]) if batch_id is not None else sa.true(),
        )
        with self._write() as conn:
            live = set(conn.execute(sa.select(runners.c.id)).scalars())
            candidates = conn.execute(sa.select(jobs.c.id, jobs.c.claimed_by).where(where))
            ids = [row_id for row_id, owner in candidates if owner is None or owner not in live]
            if not ids:
                return 0
            conn.execute(
                jobs.update()
                .where(jobs.c.id.in_(ids), where)
                .values(backend=backend, updated_at=utcnow())
            )
            for row_id in ids:
                add_event(conn, row_id, "assigned", {"to": backend})
        return len(ids)


def _reason(error: SQLAlchemyError) -> str:
    original = getattr(error, "orig", None) or error
    text = " ".join(str(original).split())
    return text[:200] or type(error).__name__
