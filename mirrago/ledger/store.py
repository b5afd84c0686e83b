"""The persistent record of every batch, job and credit reading (SQLAlchemy Core, any database).

A SQLite file in the data dir by default (WAL, a busy timeout, foreign keys: safe for the app's
threads and a CLI running beside it); `MIRRAGO_DATABASE_URL` selects any SQLAlchemy URL, and
the SQL here is portable (it runs on PostgreSQL too). Times are stored as naive UTC and
returned as aware UTC datetimes. No secret is ever stored: only inputs as given, job ids and
what the server reported.

Job rows move through `JobState`; every transition is one committed UPDATE guarded by the
states it may come from (and, for the runner's own rows, by the runner that claimed it), so two
processes can never both move a row. Runners register themselves with a heartbeat in the
`runners` table: that is how a runner tells a crashed owner's rows from a live one's.
"""

from __future__ import annotations

import enum
import itertools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from mirrago.backoff import backoff
from mirrago.config import Settings
from mirrago.errors import MirragoError, uncertain_text
from mirrago.models import Submission

log = logging.getLogger("mirrago.ledger")

SCHEMA_VERSION = 5
HOST = socket.gethostname()
OPEN_PATIENCE = 60.0  # seconds opening waits for a SQLite file another process holds
UNKNOWN_BACKEND = "unknown"  # rows recorded before ledgers knew their backend (schema 1)
UNFINISHED_STATES = ("queued", "submitting", "submitted")


class LedgerError(MirragoError):
    """The ledger cannot be opened or used (unreachable database, a schema from the future)."""


class LedgerUnavailableError(LedgerError):
    """The database did not answer (locked past its busy timeout, down, restarting, the network
    to it broken). Nothing was changed; the same call may simply be made again later."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"The job ledger at {where} is unreachable ({reason}).")
        self.reason = reason


class JobState(enum.StrEnum):
    """Where a job is in its life. See the module docstring of `mirrago.runner` for the moves."""

    QUEUED = "queued"  # waiting for a runner to submit it
    SUBMITTING = "submitting"  # claimed by a runner; the POST is (about to be) in flight
    SUBMITTED = "submitted"  # the server has it (job_id known); in progress there
    COMPLETED = "completed"
    FAILED = "failed"
    UNCERTAIN = "uncertain"  # the submission's outcome is unknown: never resubmitted by itself
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        """The runner will not move a row in this state by itself (only a user's retry does)."""
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.UNCERTAIN, JobState.CANCELED}
)
RETRYABLE_STATES = frozenset({JobState.FAILED, JobState.UNCERTAIN})


@dataclass(frozen=True)
class JobInput:
    """One try-on as the user gave it: paths or http(s) URLs, and the options."""

    target: str
    garment: str
    background: str | None = None
    username: str | None = None
    owner: str | None = None  # who asked for it, when the app has sign-in (else None)


@dataclass(frozen=True)
class JobRecord:
    """One row of a batch, as the ledger holds it now."""

    id: int
    batch_id: int
    row_index: int
    target: str
    garment: str
    background: str | None
    username: str | None
    state: JobState
    job_id: str | None
    server_status: str | None
    cloth_id: str | None
    credits_before: int | None
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    attempts: int
    error: str | None
    result_url: str | None
    result_path: str | None
    thumbnail_path: str | None
    review_verdict: str | None
    review_note: str | None
    review_tags: tuple[str, ...]
    owner: str | None = None
    deleted_at: datetime | None = None  # deleted by its owner: files gone, inputs blanked
    backend: str = UNKNOWN_BACKEND
    claimed_by: str | None = None  # the runner (host:pid:token) that submitted or polls it

    @property
    def input(self) -> JobInput:
        return JobInput(self.target, self.garment, self.background, self.username, self.owner)


@dataclass(frozen=True)
class BatchRecord:
    id: int
    name: str
    source: str
    created_at: datetime
    private: bool = False  # worked only by the runner that named it (a CLI run)
    paused: bool = False  # no runner claims its queued rows until it is resumed


@dataclass(frozen=True)
class CreditReading:
    """The balance the server reported before a job was charged (`credits_before`)."""

    at: datetime
    credits_before: int
    job_id: str | None


@dataclass(frozen=True)
class JobEvent:
    """A recorded event in a row's life that its current state does not show (a retry, say)."""

    row_id: int
    at: datetime
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Recovery:
    """What `Ledger.recover` did: rows marked uncertain, and submitted rows now ours to poll."""

    uncertain: list[int]
    adopted: list[JobRecord]


# --- reviews and run comparisons (issue 10) ------------------------------------------


@dataclass(frozen=True)
class ReviewRecord:
    """One verdict given on one attempt of a row (the history keeps every one, undone too)."""

    id: int
    row_id: int
    attempt: int
    verdict: str
    reasons: tuple[str, ...]
    note: str | None
    reviewer: str | None
    at: datetime
    seconds: float | None
    undone: bool


class Unchecked(enum.Enum):
    """`record_review(expected_review_id=UNCHECKED)`: apply whatever the row holds now (a CLI
    or a script that drew no view of the row)."""

    UNCHECKED = "unchecked"


UNCHECKED = Unchecked.UNCHECKED


class ReviewConflict(MirragoError):
    """A verdict or an undo not applied: the row holds another verdict than the one the
    reviewer saw (`theirs`: who judged it, what and when). Nothing was changed."""

    def __init__(self, theirs: ReviewRecord) -> None:
        who = (theirs.reviewer or "Someone without a name")[:40]  # a name as typed: cut short
        when = theirs.at.strftime("%Y-%m-%d %H:%M UTC")
        super().__init__(
            f"{who} judged this result {theirs.verdict.capitalize()} at {when}, after your view "
            "of it was drawn. Keep their verdict, or give yours again to replace it."
        )
        self.theirs = theirs


@dataclass(frozen=True)
class Judgement:
    """Which of two runs of the same pair is better: "left", "right" or "same"."""

    left_batch_id: int
    right_batch_id: int
    pair_key: str
    judgement: str
    reviewer: str | None
    at: datetime


# --- end reviews and run comparisons (issue 10) ---------------------------------------


# --------------------------------------------------------------------------- schema


class UTCDateTime(sa.types.TypeDecorator):
    """Aware datetimes in, stored as naive UTC (portable), aware UTC out."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the ledger stores aware datetimes only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

schema_version_table = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # A private batch is worked only by runners that name it (a CLI run), never by a runner
    # that takes every batch (the app's): Ctrl-C in the CLI must stop its submissions.
    sa.Column("private", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    # Paused from the Batch page: runners claim none of its queued rows (schema 2).
    sa.Column("paused", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Index("ix_batches_source", "source"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "batch_id", sa.Integer, sa.ForeignKey("batches.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("row_index", sa.Integer, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("garment", sa.Text, nullable=False),
    sa.Column("background", sa.Text),
    sa.Column("username", sa.Text),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("job_id", sa.String(128)),
    sa.Column("server_status", sa.String(64)),
    sa.Column("cloth_id", sa.Text),
    sa.Column("credits_before", sa.Integer),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("submitted_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("error", sa.Text),
    sa.Column("result_url", sa.Text),
    sa.Column("result_path", sa.Text),
    sa.Column("thumbnail_path", sa.Text),
    sa.Column("review_verdict", sa.String(32)),
    sa.Column("review_note", sa.Text),
    sa.Column("review_tags", sa.Text, nullable=False, default="[]"),
    # Which server the job is for (see `mirrago.backend.backend_key`): only a runner of that
    # backend submits, polls, recovers or adopts the row.
    sa.Column("backend", sa.String(255), nullable=False, server_default=UNKNOWN_BACKEND),
    sa.Column("claimed_by", sa.String(200)),  # the runner that owns a submitting/submitted row
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("owner", sa.String(320)),  # schema 2: the signed-in user who asked for it
    sa.Column("deleted_at", UTCDateTime),  # schema 2: deleted by its owner (row anonymised)
    sa.UniqueConstraint("batch_id", "row_index", name="uq_jobs_batch_row"),
    sa.Index("ix_jobs_state", "state"),
    sa.Index("ix_jobs_job_id", "job_id"),
    sa.Index("ix_jobs_claimed_by", "claimed_by"),
    sa.Index("ix_jobs_backend_state", "backend", "state"),
)

credit_readings = sa.Table(
    "credit_readings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("credits_before", sa.Integer, nullable=False),
    sa.Column("job_id", sa.String(128)),
    sa.Index("ix_credit_readings_at", "at"),
)

runners = sa.Table(
    "runners",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),  # host:pid:token
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
)

job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("row_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default="{}"),
    sa.Index("ix_job_events_row", "row_id"),
)

# --- reviews and run comparisons (issue 10) ------------------------------------------
# Every verdict ever given (the jobs table holds only the current one); a retry keeps them.
reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("row_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False, default="[]"),
    sa.Column("note", sa.Text),
    sa.Column("reviewer", sa.Text),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("seconds", sa.Float),
    sa.Column("undone", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Index("ix_reviews_row", "row_id"),
)

# A judgement of two runs of the same pair (person, garment, background) in two batches.
comparisons = sa.Table(
    "comparisons",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "left_batch_id", sa.Integer, sa.ForeignKey("batches.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column(
        "right_batch_id",
        sa.Integer,
        sa.ForeignKey("batches.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("pair_key", sa.Text, nullable=False),
    sa.Column("judgement", sa.String(8), nullable=False),
    sa.Column("reviewer", sa.Text),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("left_batch_id", "right_batch_id", "pair_key", name="uq_comparison_pair"),
)


def _add_reviews_and_comparisons(conn: Connection) -> None:
    reviews.create(conn, checkfirst=True)
    comparisons.create(conn, checkfirst=True)


# --- end reviews and run comparisons (issue 10) ---------------------------------------

# Upgrades from version n to n + 1, run in one transaction when an older ledger is opened. Each
# returns a sentence saying what it did (or None), shown to the user once.
Migration = Callable[[Connection], "str | None"]


def _add_owner_and_deletion(conn: Connection) -> None:
    """Schema 1 → 2: who owns a job (sign-in), and when its owner deleted it."""
    conn.execute(sa.text("ALTER TABLE jobs ADD COLUMN owner VARCHAR(320)"))
    conn.execute(sa.text(f"ALTER TABLE jobs ADD COLUMN deleted_at {_datetime_type(conn)}"))


def _datetime_type(conn: Connection) -> str:
    return "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"


def _add_batch_paused(conn: Connection) -> None:
    """Schema 2 → 3: batches can be paused from the Batch page."""
    conn.execute(
        sa.text("ALTER TABLE batches ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE")
    )


def _add_backend(conn: Connection) -> str | None:
    """Schema 4 → 5: every job belongs to one backend; earlier rows get "unknown"."""
    inspector = sa.inspect(conn)
    if "backend" not in {column["name"] for column in inspector.get_columns("jobs")}:
        conn.execute(
            sa.text(
                "ALTER TABLE jobs ADD COLUMN backend VARCHAR(255) NOT NULL "
                f"DEFAULT '{UNKNOWN_BACKEND}'"
            )
        )
    if "ix_jobs_backend_state" not in {index["name"] for index in inspector.get_indexes("jobs")}:
        conn.execute(sa.text("CREATE INDEX ix_jobs_backend_state ON jobs (backend, state)"))
    unfinished = conn.execute(
        sa.select(sa.func.count()).where(jobs.c.state.in_(UNFINISHED_STATES))
    ).scalar()
    if not unfinished:
        return None
    return (
        f"The job ledger was upgraded: it now records which server each job is for. "
        f"{unfinished} unfinished job(s) from before have an unknown server and wait until you "
        "assign them to this one (`mirrago assign-backend`, or the sidebar's button)."
    )


MIGRATIONS: dict[int, Migration] = {
    1: _add_owner_and_deletion,
    2: _add_batch_paused,
    3: _add_reviews_and_comparisons,  # issue 10
    4: _add_backend,  # issue 7
}


def utcnow() -> datetime:
    return datetime.now(UTC)


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


# --------------------------------------------------------------------------- the ledger


class Ledger:
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
            if conn.dialect.name == "postgresql":
                # Two processes opening a fresh database at once must not both create tables.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7310452)"))
            inspector = sa.inspect(conn)
            if not inspector.has_table("schema_version"):
                if inspector.has_table("jobs"):
                    raise LedgerError(
                        f"The database at {self.display_url} has a 'jobs' table but no Mirrago "
                        "schema version: point MIRRAGO_DATABASE_URL at a database of its own."
                    )
                metadata.create_all(conn)
                conn.execute(schema_version_table.insert().values(version=SCHEMA_VERSION))
                return
            version = conn.execute(sa.select(sa.func.max(schema_version_table.c.version))).scalar()
            migrate_schema(conn, int(version or 0), self.display_url, self.migration_notes)
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
        return _batch(row) if row else None

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
        return _batch(row) if row else None

    def batches(self, limit: int | None = None) -> list[BatchRecord]:
        """Batches, newest first."""
        query = batches.select().order_by(batches.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [_batch(row) for row in conn.execute(query)]

    # ------------------------------------------------------------------ the Batch page (issue 9)

    def batch_owners(self, batch_ids: Iterable[int]) -> dict[int, str]:
        """Who started each batch, with sign-in (issue 8): its rows' owner; absent when none."""
        query = (sa.select(jobs.c.batch_id, sa.func.min(jobs.c.owner))
                 .where(jobs.c.batch_id.in_(list(batch_ids)), jobs.c.owner.is_not(None))
                 .group_by(jobs.c.batch_id))
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
                sa.select(jobs.c.state, jobs.c.target, jobs.c.garment, jobs.c.result_path,
                          jobs.c.thumbnail_path).where(jobs.c.batch_id == batch_id)
            ).all()
            if any(row.state in busy for row in rows):
                return None
            named = {value for row in rows for value in row[1:] if value}
            conn.execute(job_events.delete().where(
                job_events.c.row_id.in_(sa.select(jobs.c.id).where(jobs.c.batch_id == batch_id))
            ))
            conn.execute(jobs.delete().where(jobs.c.batch_id == batch_id))
            conn.execute(batches.delete().where(batches.c.id == batch_id))
            still_named = set()
            if named:
                for column in (jobs.c.target, jobs.c.garment, jobs.c.result_path,
                               jobs.c.thumbnail_path):
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
            return [_job(row) for row in conn.execute(query)]

    def job(self, row_id: int) -> JobRecord | None:
        with self._read() as conn:
            row = conn.execute(jobs.select().where(jobs.c.id == row_id)).first()
        return _job(row) if row else None

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

    def set_review(
        self,
        row_id: int,
        verdict: str | None,
        note: str | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        clean_tags = sorted({str(tag).strip() for tag in tags if str(tag).strip()})
        with self._write() as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.id == row_id)
                .values(
                    review_verdict=verdict,
                    review_note=note,
                    review_tags=json.dumps(clean_tags),
                    updated_at=utcnow(),
                )
            )

    def cancel(self, row_id: int) -> bool:
        """Cancel a queued row; False when it is no longer queued (already being submitted)."""
        with self._write() as conn:
            moved = _move(
                conn, row_id, {JobState.QUEUED}, state=JobState.CANCELED, finished_at=utcnow()
            )
            if moved:
                _event(conn, row_id, "canceled", {})
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
            conn.execute(jobs.update().where(jobs.c.id == row_id).values(
                target="", garment="", username=None, owner=None, error=None,
                result_url=None, result_path=None, thumbnail_path=None, review_note=None,
                deleted_at=utcnow(), updated_at=utcnow(),
            ))  # fmt: skip
            _event(conn, row_id, "deleted", {})
        return _job(row)

    def uses_file(self, path: str) -> bool:
        """Whether a row not deleted still refers to `path` (as an input or a result)."""
        query = sa.select(jobs.c.id).where(
            jobs.c.deleted_at.is_(None),
            sa.or_(
                jobs.c.target == path, jobs.c.garment == path,
                jobs.c.result_path == path, jobs.c.thumbnail_path == path,
            ),
        ).limit(1)  # fmt: skip
        with self._read() as conn:
            return conn.execute(query).first() is not None

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
            moved = _move(
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
                # A new attempt asks for a new verdict; the old one stays in `reviews` (issue 10).
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
                if row.review_verdict:  # issue 10: a re-run result that had a verdict
                    previous["review_verdict"] = row.review_verdict
                _event(conn, row_id, "retried", previous)
        return moved

    # --- reviews and run comparisons (issue 10) --------------------------------------

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
            int(review_id), row_id, attempt, verdict, tuple(clean), note, reviewer, now,
            seconds, False,
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
            latest = _review(found[0])
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
            .where(jobs.c.batch_id.in_(list(batch_ids)),
                   jobs.c.state == JobState.COMPLETED.value,
                   jobs.c.review_verdict.in_(["pass", "fail"]))
            .group_by(jobs.c.batch_id)
        )  # fmt: skip
        with self._read() as conn:
            return {int(b): (int(p or 0), int(n)) for b, p, n in conn.execute(query)}

    def current_review_ids(self, batch_id: int) -> dict[int, int]:
        """Row id → the id of the verdict each reviewed row of the batch holds now (the latest
        on its current attempt not undone): what a page saw, for `record_review`."""
        query = (
            sa.select(reviews.c.row_id, sa.func.max(reviews.c.id))
            .join(jobs, sa.and_(jobs.c.id == reviews.c.row_id,
                                jobs.c.attempts == reviews.c.attempt))
            .where(jobs.c.batch_id == batch_id, reviews.c.undone == sa.false())
            .group_by(reviews.c.row_id)
        )  # fmt: skip
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
            return [_review(row) for row in conn.execute(query)]

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

    # --- end reviews and run comparisons (issue 10) ----------------------------------
    def unfinished_by_backend(self) -> dict[str, int]:
        """How many queued or in-progress rows each backend has (the unknown one included)."""
        query = (
            sa.select(jobs.c.backend, sa.func.count())
            .where(jobs.c.state.in_(UNFINISHED_STATES))
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
            jobs.c.state.in_(UNFINISHED_STATES),
            _in_scope([batch_id]) if batch_id is not None else sa.true(),
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
                _event(conn, row_id, "assigned", {"to": backend})
        return len(ids)

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
                moved = _move(
                    conn,
                    row_id,
                    {JobState.SUBMITTING},
                    state=JobState.UNCERTAIN,
                    finished_at=now,
                    error=uncertain_text("the runner submitting it stopped before the answer"),
                )
                if moved:
                    uncertain_ids.append(row_id)
                    _event(conn, row_id, "uncertain", {"owner": owner})
            adopt = sa.and_(
                orphaned, jobs.c.state == JobState.SUBMITTED.value, _in_scope(batch_ids)
            )
            adopt_ids = list(conn.execute(sa.select(jobs.c.id).where(adopt)).scalars())
            if adopt_ids:
                conn.execute(
                    jobs.update()
                    .where(jobs.c.id.in_(adopt_ids), adopt)
                    .values(claimed_by=runner_id, claimed_at=now, updated_at=now)
                )
                adopted = [
                    _job(row)
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
            return [_job(row) for row in conn.execute(query)]

    # ------------------------------------------------------------------ the runner's moves

    def has_queued(self, batch_ids: Iterable[int] | None = None, *, backend: str) -> bool:
        query = (
            sa.select(jobs.c.id)
            .where(
                jobs.c.state == JobState.QUEUED.value,
                jobs.c.backend == backend,
                _claimable(batch_ids),
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
        scope = sa.and_(jobs.c.backend == backend, _claimable(batch_ids))
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
                if _move(
                    conn,
                    row_id,
                    {JobState.QUEUED},
                    state=JobState.SUBMITTING,
                    claimed_by=runner_id,
                    claimed_at=now,
                ):
                    return _job(conn.execute(jobs.select().where(jobs.c.id == row_id)).one())
        return None

    def release(self, row_id: int, runner_id: str) -> bool:
        """Back to `queued`: the submission certainly created no job (a rate limit, say)."""
        with self._write() as conn:
            return _move(
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
            moved = _move(
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
                _event(conn, row_id, "late_submission", {"job_id": submission.job_id})
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
            return _move(conn, row_id, {JobState.SUBMITTED}, owner=runner_id, **values)

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
            return _move(
                conn,
                row_id,
                from_states,
                owner=runner_id,
                state=state,
                finished_at=utcnow(),
                **values,
            )

    # ------------------------------------------------------------------ test and admin helpers

    def drop_all(self) -> None:
        """Drop every table (tests on a shared PostgreSQL server clean up with this)."""
        with self._write() as conn:
            metadata.drop_all(conn)


def migrate_schema(
    conn: Connection, version: int, where: str = "the ledger", notes: list[str] | None = None
) -> int:
    """Bring a ledger at `version` up to SCHEMA_VERSION with MIGRATIONS; returns the version.
    What each step did (a sentence for the user) is appended to `notes`."""
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"The job ledger at {where} was written by a newer Mirrago Studio (schema "
            f"{version}; this version knows {SCHEMA_VERSION}): upgrade Mirrago Studio, or use "
            "another MIRRAGO_DATA_DIR / MIRRAGO_DATABASE_URL."
        )
    start = version
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise LedgerError(
                f"The job ledger at {where} has schema {version}, and this Mirrago Studio "
                f"cannot upgrade it to {SCHEMA_VERSION}: use another MIRRAGO_DATA_DIR."
            )
        note = step(conn)
        if note and notes is not None:
            notes.append(note)
        version += 1
    if version != start:
        conn.execute(schema_version_table.delete())
        conn.execute(schema_version_table.insert().values(version=version))
    return version


# --------------------------------------------------------------------------- helpers


def _move(
    conn: Connection,
    row_id: int,
    from_states: Iterable[JobState],
    *,
    owner: str | None = None,
    **values: Any,
) -> bool:
    """Change one row if it is in one of `from_states` (and claimed by `owner`, if given)."""
    if "state" in values:
        values["state"] = JobState(values["state"]).value
    query = jobs.update().where(
        jobs.c.id == row_id, jobs.c.state.in_([JobState(s).value for s in from_states])
    )
    if owner is not None:
        query = query.where(jobs.c.claimed_by == owner)
    result = conn.execute(query.values(updated_at=utcnow(), **values))
    return result.rowcount == 1


def _event(conn: Connection, row_id: int, kind: str, detail: dict[str, Any]) -> None:
    conn.execute(
        job_events.insert().values(
            row_id=row_id, at=utcnow(), kind=kind, detail=json.dumps(detail, default=str)
        )
    )


def _in_scope(batch_ids: Iterable[int] | None) -> sa.ColumnElement[bool]:
    """Rows a runner works on: those of the named batches, or of every batch not private."""
    if batch_ids is not None:
        return jobs.c.batch_id.in_(list(batch_ids))
    public = sa.select(batches.c.id).where(batches.c.private == sa.false())
    return jobs.c.batch_id.in_(public)


def _claimable(batch_ids: Iterable[int] | None) -> sa.ColumnElement[bool]:
    """Queued rows a runner may submit: in its scope, and not in a paused batch."""
    paused = sa.select(batches.c.id).where(batches.c.paused == sa.true())
    return sa.and_(_in_scope(batch_ids), jobs.c.batch_id.not_in(paused))


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


def _reason(error: SQLAlchemyError) -> str:
    original = getattr(error, "orig", None) or error
    text = " ".join(str(original).split())
    return text[:200] or type(error).__name__


def _batch(row: Any) -> BatchRecord:
    return BatchRecord(
        int(row.id), row.name, row.source, row.created_at, bool(row.private), bool(row.paused)
    )


def _job(row: Any) -> JobRecord:
    try:
        tags = tuple(json.loads(row.review_tags or "[]"))
    except ValueError:
        tags = ()
    return JobRecord(
        id=int(row.id),
        batch_id=int(row.batch_id),
        row_index=int(row.row_index),
        target=row.target,
        garment=row.garment,
        background=row.background,
        username=row.username,
        state=JobState(row.state),
        job_id=row.job_id,
        server_status=row.server_status,
        cloth_id=row.cloth_id,
        credits_before=row.credits_before,
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        finished_at=row.finished_at,
        attempts=int(row.attempts),
        error=row.error,
        result_url=row.result_url,
        result_path=row.result_path,
        thumbnail_path=row.thumbnail_path,
        review_verdict=row.review_verdict,
        review_note=row.review_note,
        review_tags=tags,
        owner=row.owner,
        deleted_at=row.deleted_at,
        backend=row.backend,
        claimed_by=row.claimed_by,
    )


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
    return _review(row) if row else None


def _review(row: Any) -> ReviewRecord:  # issue 10
    try:
        reasons = tuple(json.loads(row.reasons or "[]"))
    except ValueError:
        reasons = ()
    return ReviewRecord(
        id=int(row.id),
        row_id=int(row.row_id),
        attempt=int(row.attempt),
        verdict=row.verdict,
        reasons=reasons,
        note=row.note,
        reviewer=row.reviewer,
        at=row.at,
        seconds=None if row.seconds is None else float(row.seconds),
        undone=bool(row.undone),
    )
