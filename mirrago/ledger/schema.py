"""The ledger's schema in one file: its tables, SCHEMA_VERSION and the migrations up to it.

Also the few statements every part of the ledger shares (a guarded row move, an event, which
rows a runner works on), written against these tables. `mirrago.usage` reads these tables
for its figures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mirrago.ledger.records import (
    ACTIVE_STATES,
    UNKNOWN_BACKEND,
    JobState,
    LedgerError,
    utcnow,
)

SCHEMA_VERSION = 8


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

# Stage: named, ordered decks of finished results for presenting (`mirrago.ledger.decks`).
decks = sa.Table(
    "decks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("owner", sa.String(320)),  # the signed-in user who made it (None without sign-in)
    sa.Column("shared", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# A slide names its files itself: a deck plays from the data dir after its job's batch is gone
# (the row then becomes NULL), never from the API's result URL.
deck_slides = sa.Table(
    "deck_slides",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deck_id", sa.Integer, sa.ForeignKey("decks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("row_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="SET NULL")),
    sa.Column("result_path", sa.Text, nullable=False),
    sa.Column("thumbnail_path", sa.Text),
    sa.Column("person_path", sa.Text),
    sa.Column("garment_path", sa.Text),
    sa.Column("person_label", sa.Text),
    sa.Column("garment_label", sa.Text),
    sa.Column("notes", sa.Text),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.Index("ix_deck_slides_deck", "deck_id"),
    sa.Index("ix_deck_slides_row", "row_id"),
)

# The quality checks' findings on a row's result (mirrago.triage): one per row, the latest.
triage_results = sa.Table(
    "triage_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("row_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),  # the row's attempt whose result was checked
    sa.Column("checks_version", sa.Integer, nullable=False),
    sa.Column("score", sa.Float),  # 0…1; NULL when not checked
    sa.Column("flags", sa.Text, nullable=False, default="[]"),  # JSON list of flag codes
    sa.Column("check_values", sa.Text, nullable=False, default="{}"),  # JSON {code: value}
    sa.Column("not_checked", sa.Text),  # why the result could not be checked
    sa.Column("at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("row_id", name="uq_triage_results_row"),
)

# How long jobs took on each backend, submit -> done (the latest few hundred per backend), and
# how many the server ran at once when it showed it: a new runner's poll schedule starts from
# them (mirrago.ledger.durations). Keyed by backend: another server starts with no history.
job_durations = sa.Table(
    "job_durations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("backend", sa.String(255), nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("parallel", sa.Integer),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_job_durations_backend", "backend", "id"),
)


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
    conn.execute(sa.text("ALTER TABLE batches ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE"))


def _add_reviews_and_comparisons(conn: Connection) -> None:
    """Schema 3 → 4: every verdict ever given, and judgements of two runs of the same pair."""
    reviews.create(conn, checkfirst=True)
    comparisons.create(conn, checkfirst=True)


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
    active = [state.value for state in ACTIVE_STATES]
    unfinished = conn.execute(sa.select(sa.func.count()).where(jobs.c.state.in_(active))).scalar()
    if not unfinished:
        return None
    return (
        f"The job ledger was upgraded: it now records which server each job is for. "
        f"{unfinished} unfinished job(s) from before have an unknown server and wait until you "
        "assign them to this one (`mirrago assign-backend`, or the sidebar's button)."
    )


def _add_decks(conn: Connection) -> None:
    """Schema 5 → 6: Stage's decks and their slides."""
    decks.create(conn, checkfirst=True)
    deck_slides.create(conn, checkfirst=True)


def _add_triage_results(conn: Connection) -> None:
    """Schema 6 → 7: the quality checks' findings on each result."""
    triage_results.create(conn, checkfirst=True)


def _add_job_durations(conn: Connection) -> None:
    """Schema 7 → 8: how long jobs took on each backend, for the runner's poll schedule."""
    job_durations.create(conn, checkfirst=True)


MIGRATIONS: dict[int, Migration] = {
    1: _add_owner_and_deletion,
    2: _add_batch_paused,
    3: _add_reviews_and_comparisons,
    4: _add_backend,
    5: _add_decks,
    6: _add_triage_results,
    7: _add_job_durations,
}


def create_or_upgrade(conn: Connection, where: str, notes: list[str]) -> None:
    """Create the tables in an empty database, or bring an older ledger up to SCHEMA_VERSION
    (what each step did is appended to `notes`). `where` names the database in messages."""
    if conn.dialect.name == "postgresql":
        # Two processes opening a fresh database at once must not both create tables.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7310452)"))
    inspector = sa.inspect(conn)
    if not inspector.has_table("schema_version"):
        if inspector.has_table("jobs"):
            raise LedgerError(
                f"The database at {where} has a 'jobs' table but no Mirrago "
                "schema version: point MIRRAGO_DATABASE_URL at a database of its own."
            )
        metadata.create_all(conn)
        conn.execute(schema_version_table.insert().values(version=SCHEMA_VERSION))
        return
    version = conn.execute(sa.select(sa.func.max(schema_version_table.c.version))).scalar()
    migrate_schema(conn, int(version or 0), where, notes)


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


# ------------------------------------------------- statements the parts of the ledger share


def move(
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


def add_event(conn: Connection, row_id: int, kind: str, detail: dict[str, Any]) -> None:
    conn.execute(
        job_events.insert().values(
            row_id=row_id, at=utcnow(), kind=kind, detail=json.dumps(detail, default=str)
        )
    )


def in_scope(batch_ids: Iterable[int] | None) -> sa.ColumnElement[bool]:
    """Rows a runner works on: those of the named batches, or of every batch not private."""
    if batch_ids is not None:
        return jobs.c.batch_id.in_(list(batch_ids))
    public = sa.select(batches.c.id).where(batches.c.private == sa.false())
    return jobs.c.batch_id.in_(public)


def claimable(batch_ids: Iterable[int] | None) -> sa.ColumnElement[bool]:
    """Queued rows a runner may submit: in its scope, and not in a paused batch."""
    paused = sa.select(batches.c.id).where(batches.c.paused == sa.true())
    return sa.and_(in_scope(batch_ids), jobs.c.batch_id.not_in(paused))
