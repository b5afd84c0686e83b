"""The Usage page's SQL over the ledger's tables: the credit readings in the server's order, jobs
by day, outcome and source, and the batches to mark or choose. The history of jobs and its
export are in history.py.

Readings are recorded after the submission's answer arrives, so concurrent submissions can be
recorded a moment out of the server's order: readings less than `BURST_GAP` seconds apart whose
balance moves by at most `BURST_JUMP` are put back in the server's order (highest balance
first) before they are compared.

Every figure is computed in SQL (GROUP BY and window functions that SQLite ≥ 3.25 and
PostgreSQL share); Python only reads aggregates, a page of history, or an export when asked.
Days are UTC days. The figures made from the readings are in figures.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from mirrago.ledger import (
    FINAL_STATES,
    JobState,
    Ledger,
    Origin,
    batches,
    credit_readings,
    jobs,
)
from mirrago.models import CREDITS_PER_TRY_ON

BURST_GAP = 5.0  # seconds
BURST_JUMP = 64  # credits: a larger move between close readings is real (a top-up), not order
# The newest readings the balance now is read from: more than the server-order fix-up of
# concurrent readings (BURST_GAP) reaches back, however fast a batch submits.
LATEST_TAIL = 2000
PASS_VERDICTS = ("pass", "passed", "approved", "good", "ok")
OUTCOMES = tuple(state.value for state in FINAL_STATES)
OUTCOME_ORDER = ("completed", "failed", "uncertain", "canceled")


# --------------------------------------------------------------------------- periods and filters


@dataclass(frozen=True)
class Period:
    """A range of whole UTC days, both ends included; `start=None` means from the beginning."""

    start: date | None
    end: date

    @classmethod
    def last(cls, days: int | None, today: date | None = None) -> Period:
        """The last `days` days up to today (None: everything)."""
        today = today or datetime.now(UTC).date()
        return cls(None if days is None else today - timedelta(days=days - 1), today)

    @property
    def since(self) -> datetime | None:
        return None if self.start is None else _midnight(self.start)

    @property
    def until(self) -> datetime:
        return _midnight(self.end + timedelta(days=1))

    def label(self) -> str:
        start = "the beginning" if self.start is None else self.start.isoformat()
        return f"{start} to {self.end.isoformat()}"


@dataclass(frozen=True)
class Activity:
    """Jobs in the period: outcome counts, success rate, time from submission to result."""

    counts: dict[str, int]
    success_rate: float | None  # completed / (completed + failed + uncertain)
    p50: float | None  # seconds
    p95: float | None
    jobs: int


# --------------------------------------------------------------------------- dialect helpers


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _is_sqlite(conn: sa.Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _day(conn: sa.Connection, column: Any) -> Any:
    """The UTC day of a stored time (the ledger stores naive UTC)."""
    return sa.func.date(column) if _is_sqlite(conn) else sa.cast(column, sa.Date)


def _seconds(conn: sa.Connection, later: Any, earlier: Any) -> Any:
    if _is_sqlite(conn):
        return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0
    return sa.extract("epoch", later - earlier)


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def as_time(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- the readings


def reading_flows(conn: sa.Connection, tail: int | None = None) -> sa.CTE:
    """Every reading (or the newest `tail` of them) in server order, with what happened since
    the previous one.

    Columns: `seq` (server order), `total` (readings), `at`, `job_id`, `credits` (the reading),
    `prev` (the previous reading in server order), `seen_at` (a running maximum of `at`, so days
    follow the server order). Readings are first walked in insertion order (no sort) to find
    bursts; one sort then puts each burst in server order.
    """
    source: Any = credit_readings
    if tail is not None:
        newest = credit_readings.select().order_by(credit_readings.c.id.desc()).limit(tail)
        source = newest.subquery("usage_tail")
    by_id = source.c.id
    raw = sa.select(
        source.c.id,
        source.c.at,
        source.c.job_id,
        source.c.credits_before.label("credits"),
        sa.func.lag(source.c.at).over(order_by=by_id).label("prev_at"),
        sa.func.lag(source.c.credits_before).over(order_by=by_id).label("prev_credits"),
    ).cte("usage_raw")
    breaks = sa.case(
        (raw.c.prev_at.is_(None), 1),
        (sa.func.abs(_seconds(conn, raw.c.at, raw.c.prev_at)) > BURST_GAP, 1),
        (sa.func.abs(raw.c.credits - raw.c.prev_credits) > BURST_JUMP, 1),
        else_=0,
    )
    bursts = sa.select(
        raw.c.id,
        raw.c.at,
        raw.c.job_id,
        raw.c.credits,
        sa.func.sum(breaks).over(order_by=raw.c.id, rows=(None, 0)).label("burst"),
    ).cte("usage_bursts")
    server_order = (bursts.c.burst, bursts.c.credits.desc(), bursts.c.id)
    return sa.select(
        sa.func.row_number().over(order_by=server_order).label("seq"),
        sa.func.count().over().label("total"),
        bursts.c.at,
        bursts.c.job_id,
        bursts.c.credits,
        sa.func.lag(bursts.c.credits).over(order_by=server_order).label("prev"),
        sa.func.max(bursts.c.at).over(order_by=server_order, rows=(None, 0)).label("seen_at"),
    ).cte("usage_flows")


def _excess(flows: sa.CTE) -> Any:
    return flows.c.prev - CREDITS_PER_TRY_ON - flows.c.credits


def _positive(value: Any) -> Any:
    return sa.case((value > 0, value), else_=0)


def day_totals(conn: sa.Connection, flows: sa.CTE, now: datetime) -> list[sa.Row[Any]]:
    """One row per day with readings, oldest first: the day, credits spent by Studio, used
    outside Studio, topped up or refunded; the first reading (on the first day), the latest
    reading, its time and job (on its day); credits used in the 7 and in the 30 days before
    `now`; the day's first and last reading times."""
    day = _day(conn, flows.c.seen_at)
    excess = _excess(flows)
    per_reading = sa.select(
        day.label("day"),
        flows.c.seq,
        flows.c.total,
        flows.c.at,
        flows.c.seen_at,
        flows.c.job_id,
        flows.c.credits,
        excess.label("excess"),
        (CREDITS_PER_TRY_ON + _positive(excess)).label("used"),
    ).cte("usage_days")
    r = per_reading.c
    latest = r.seq == r.total

    def used_since(days: int) -> Any:
        return sa.func.sum(sa.case((r.seen_at >= now - timedelta(days=days), r.used), else_=0))

    query = (
        sa.select(
            r.day,
            sa.func.count() * CREDITS_PER_TRY_ON,
            sa.func.coalesce(sa.func.sum(_positive(r.excess)), 0),
            sa.func.coalesce(sa.func.sum(_positive(-r.excess)), 0),
            sa.func.max(sa.case((r.seq == 1, r.credits))),  # the first reading, on day one
            sa.func.max(sa.case((latest, r.credits))),
            sa.func.max(sa.case((latest, r.seen_at))),
            sa.func.max(sa.case((latest, r.job_id))),
            used_since(7),
            used_since(30),
            sa.func.min(r.at),
            sa.func.max(r.seen_at),
        )
        .group_by(r.day)
        .order_by(r.day)
    )
    return list(conn.execute(query))


def latest_reading(conn: sa.Connection) -> sa.Row[Any] | None:
    """The latest reading in the server's order, (credits, seen_at, job_id), or None before the
    first; reads only the newest LATEST_TAIL readings."""
    flows = reading_flows(conn, tail=LATEST_TAIL)
    return conn.execute(
        sa.select(flows.c.credits, flows.c.seen_at, flows.c.job_id).where(
            flows.c.seq == flows.c.total
        )
    ).first()


def failed_on_server(conn: sa.Connection, job_id: str) -> bool:
    """Whether the job with the service's `job_id` failed there (the service refunds those)."""
    failed = sa.select(jobs.c.id).where(
        jobs.c.job_id == job_id, jobs.c.state == JobState.FAILED.value
    )
    return conn.execute(failed.limit(1)).first() is not None


_PACK = 10**9  # more than any balance (+ _SHIFT) will be
_SHIFT = 10**8  # keeps a negative balance positive in the packing


def balance_series(
    conn: sa.Connection,
    flows: sa.CTE,
    period: Period,
    first_at: datetime | None,
    last_at: datetime | None,
    points: int,
) -> list[tuple[datetime, int]]:
    """The balance after each reading in the period, for a step chart: at most about `points`
    (the last reading of each time bucket of 1/`points` of the period's readings' span)."""
    if first_at is None or last_at is None:
        return []
    start = max(period.since or first_at, first_at)
    width = max(1e-3, (min(period.until, last_at) - start).total_seconds() / points)
    origin = sa.literal(start.replace(tzinfo=None), sa.DateTime)
    offset = _seconds(conn, flows.c.seen_at, origin) / width  # never negative here
    bucket = sa.cast(offset if _is_sqlite(conn) else sa.func.floor(offset), sa.Integer)
    where = [flows.c.seen_at < period.until]
    if period.since is not None:
        where.append(flows.c.seen_at >= period.since)
    # The bucket's last reading in one GROUP BY, without a second sort: the largest of
    # seq·PACK + credits + SHIFT carries the last seq's credits in its low digits.
    packed = sa.cast(flows.c.seq, sa.BigInteger) * _PACK + flows.c.credits + _SHIFT
    rows = conn.execute(
        sa.select(sa.func.max(flows.c.seen_at), sa.func.max(packed))
        .where(*where)
        .group_by(bucket)
        .order_by(sa.func.max(flows.c.seen_at))
    ).all()
    rows = [(at, int(value) % _PACK - _SHIFT) for at, value in rows]
    return [(as_time(at), int(credits) - CREDITS_PER_TRY_ON) for at, credits in rows]


# --------------------------------------------------------------------------- jobs


def source_label() -> Any:
    """`Origin.label` in SQL: a source that is no `Origin` value is a CLI batch's folder."""
    return sa.case(
        (batches.c.private == sa.true(), Origin.CLI_BATCH.label),  # only CLI batches are private
        *((batches.c.source == origin.value, origin.label) for origin in Origin),
        else_=Origin.CLI_BATCH.label,
    )


def in_period(column: Any, period: Period) -> sa.ColumnElement[bool]:
    clauses = [column < period.until]
    if period.since is not None:
        clauses.append(column >= period.since)
    return sa.and_(*clauses)


def jobs_per_day(ledger: Ledger, period: Period) -> list[tuple[date, str, int]]:
    """(day, outcome, jobs) for the final jobs created in the period."""
    with ledger.read_connection() as conn:
        day = _day(conn, jobs.c.created_at)
        query = (
            sa.select(day, jobs.c.state, sa.func.count())
            .where(jobs.c.state.in_(OUTCOMES), in_period(jobs.c.created_at, period))
            .group_by(day, jobs.c.state)
            .order_by(day)
        )
        return [(as_date(d), str(state), int(n)) for d, state, n in conn.execute(query)]


def _percentiles(conn: sa.Connection, period: Period) -> tuple[float | None, float | None]:
    """Nearest-rank p50 and p95 of submission-to-result seconds of completed jobs."""
    seconds = _seconds(conn, jobs.c.finished_at, jobs.c.submitted_at)
    durations = (
        sa.select(
            seconds.label("seconds"),
            sa.func.row_number().over(order_by=seconds).label("rank"),
            sa.func.count().over().label("total"),
        )
        .where(
            jobs.c.state == JobState.COMPLETED.value,
            jobs.c.submitted_at.is_not(None),
            jobs.c.finished_at.is_not(None),
            in_period(jobs.c.created_at, period),
        )
        .cte("usage_durations")
    )
    p50, p95 = conn.execute(
        sa.select(
            *(
                sa.func.min(
                    sa.case(
                        (durations.c.rank * 1.0 >= durations.c.total * share, durations.c.seconds)
                    )
                )
                for share in (0.50, 0.95)
            )
        )
    ).one()
    return (None if p50 is None else float(p50)), (None if p95 is None else float(p95))


def activity(ledger: Ledger, period: Period) -> Activity:
    with ledger.read_connection() as conn:
        counts = {state: 0 for state in OUTCOME_ORDER}
        query = (
            sa.select(jobs.c.state, sa.func.count())
            .where(in_period(jobs.c.created_at, period))
            .group_by(jobs.c.state)
        )
        total = 0
        for state, count in conn.execute(query):
            total += int(count)
            if state in counts:
                counts[state] = int(count)
        p50, p95 = _percentiles(conn, period)
    decided = counts["completed"] + counts["failed"] + counts["uncertain"]
    rate = counts["completed"] / decided if decided else None
    return Activity(counts, rate, p50, p95, total)


def breakdown(ledger: Ledger, period: Period, by: str) -> list[dict[str, Any]]:
    """Jobs in the period grouped `by` "source", "username", "owner" (when recorded) or
    "batch": jobs, completed, failed, credits, success rate and review pass rate."""
    if by == "source":
        key: Any = source_label()
    elif by in ("username", "owner"):
        key = sa.func.coalesce(jobs.c[by], "(none)")
    elif by == "batch":
        key = batches.c.id
    else:
        raise ValueError(f"cannot break usage down by {by!r}")
    completed = sa.func.sum(sa.case((jobs.c.state == JobState.COMPLETED.value, 1), else_=0))
    failed = sa.func.sum(
        sa.case((jobs.c.state.in_([JobState.FAILED.value, JobState.UNCERTAIN.value]), 1), else_=0)
    )
    charged = sa.func.sum(
        sa.case(
            (sa.and_(jobs.c.job_id.is_not(None), jobs.c.state != JobState.FAILED.value), 1),
            else_=0,
        )
    )
    passed = sa.func.sum(
        sa.case((sa.func.lower(jobs.c.review_verdict).in_(PASS_VERDICTS), 1), else_=0)
    )
    reviewed = sa.func.count(jobs.c.review_verdict)
    columns = [
        key.label("key"),
        sa.func.count().label("jobs"),
        completed.label("completed"),
        failed.label("failed"),
        charged.label("credits"),
        passed.label("passed"),
        reviewed.label("reviewed"),
    ]
    if by == "batch":
        columns += [
            sa.func.max(batches.c.name).label("name"),
            sa.func.max(batches.c.created_at).label("created_at"),
        ]
    query = (
        sa.select(*columns)
        .select_from(jobs.join(batches, jobs.c.batch_id == batches.c.id))
        .where(in_period(jobs.c.created_at, period))
        .group_by(key)
        .order_by(sa.func.count().desc(), key)
    )
    if by == "batch":
        query = query.limit(200)
    with ledger.read_connection() as conn:
        rows = conn.execute(query).mappings().all()
    table = []
    for row in rows:
        done, bad, reviewed_n = int(row["completed"]), int(row["failed"]), int(row["reviewed"])
        item = {
            by: row["key"] if by != "batch" else f"#{row['key']} {row['name']}",
            "jobs": int(row["jobs"]),
            "completed": done,
            "failed": bad,
            "credits": int(row["credits"] or 0) * CREDITS_PER_TRY_ON,
            "success rate": done / (done + bad) if done + bad else None,
            "pass rate": int(row["passed"]) / reviewed_n if reviewed_n else None,
        }
        if by == "batch":
            item["batch_id"] = int(row["key"])
        table.append(item)
    return table


def batch_marks(ledger: Ledger, period: Period, limit: int = 40) -> list[tuple[datetime, str, int]]:
    """Batches of more than one job started in the period, to mark on the chart:
    (start, "#id name", jobs), the largest `limit` of them, by start."""
    size = sa.func.count(jobs.c.id)
    query = (
        sa.select(batches.c.id, batches.c.name, batches.c.created_at, size)
        .select_from(batches.join(jobs, jobs.c.batch_id == batches.c.id))
        .where(in_period(batches.c.created_at, period))
        .group_by(batches.c.id, batches.c.name, batches.c.created_at)
        .having(size > 1)
        .order_by(size.desc(), batches.c.id.desc())
        .limit(limit)
    )
    with ledger.read_connection() as conn:
        rows = conn.execute(query).all()
    marks = [(as_time(created), f"#{bid} {name}", int(n)) for bid, name, created, n in rows]
    return sorted(marks)


def batch_choices(ledger: Ledger, limit: int = 200) -> list[tuple[int, str]]:
    """The newest batches of more than one job, for the history's batch filter."""
    size = sa.func.count(jobs.c.id)
    query = (
        sa.select(batches.c.id, batches.c.name, size)
        .select_from(batches.join(jobs, jobs.c.batch_id == batches.c.id))
        .group_by(batches.c.id, batches.c.name)
        .having(size > 1)
        .order_by(batches.c.id.desc())
        .limit(limit)
    )
    with ledger.read_connection() as conn:
        return [(int(bid), f"#{bid} {name} ({n} jobs)") for bid, name, n in conn.execute(query)]


def has_activity(ledger: Ledger) -> bool:
    """Whether the ledger holds any job or reading (else the page shows its empty state)."""
    with ledger.read_connection() as conn:
        found = conn.execute(sa.select(jobs.c.id).limit(1)).first()
        found = found or conn.execute(sa.select(credit_readings.c.id).limit(1)).first()
    return found is not None


def data_version(ledger: Ledger) -> tuple[Any, ...]:
    """Changes whenever a reading or a job is added or a job changes: a cache key for figures."""
    with ledger.read_connection() as conn:
        readings = conn.execute(sa.select(sa.func.max(credit_readings.c.id), sa.func.count())).one()
        rows = conn.execute(
            sa.select(sa.func.max(jobs.c.id), sa.func.count(), sa.func.max(jobs.c.updated_at))
        ).one()
    return (*readings, *rows[:2], str(rows[2]))
