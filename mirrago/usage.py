"""Where the credits went and where they are going: the Usage page's and `mirrago usage`'s figures.

The API reports the balance only as `credits_before` on each submission, so the ledger's
credit readings are the source. Every submission costs `CREDITS_PER_JOB`. Between two
consecutive readings the balance should fall by exactly the credits of Studio's own submission
at the first of them; a larger fall is **used outside Studio** (another tool, a script, a leaked
key on the same account), a smaller fall or a rise is a **top-up or refund**. A failed job's
refund can only raise the balance, so it never shows as outside use (it shows as a refund).

Readings are recorded after the submission's answer arrives, so concurrent submissions can be
recorded a moment out of the server's order: readings less than `BURST_GAP` seconds apart whose
balance moves by at most `BURST_JUMP` are put back in the server's order (highest balance
first) before they are compared.

Every figure is computed in SQL (GROUP BY and window functions that SQLite ≥ 3.25 and
PostgreSQL share); Python only reads aggregates, a page of history, or an export when asked.
Days are UTC days.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from mirrago.ledger import FINAL_STATES, JobState, Ledger, batches, credit_readings, jobs

CREDITS_PER_JOB = 1
BURST_GAP = 5.0  # seconds
BURST_JUMP = 64  # credits: a larger move between close readings is real (a top-up), not order
WARN_DAYS = 7
PASS_VERDICTS = ("pass", "passed", "approved", "good", "ok")
SOURCES = ("Try-on", "Batch", "CLI")
OUTCOMES = tuple(state.value for state in FINAL_STATES)
OUTCOME_ORDER = ("completed", "failed", "uncertain", "canceled")

RULE = (
    "Each submission costs 1 credit, charged when it is made. Between two readings the balance "
    "should fall by exactly Studio's own submissions; a larger fall is counted as used outside "
    "Studio, a rise as a top-up or refund (the service refunds failed jobs), so a refund never "
    "counts as outside use. Use outside Studio after the latest reading shows with the next one."
)


# --------------------------------------------------------------------------- results


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
class StatementDay:
    """One day of the statement: opening − spent − outside + top-ups = closing."""

    day: date
    opening: int
    spent: int  # by Studio's submissions
    outside: int  # used outside Studio
    topups: int  # top-ups and refunds
    closing: int


@dataclass(frozen=True)
class Balance:
    """The metrics at the top of the page."""

    balance: int | None  # None: no reading yet
    as_of: datetime | None
    burn_7: float  # credits per day (Studio and outside) over the last 7 days
    burn_30: float
    runs_out: date | None  # at the 7-day rate; None: not at this rate
    days_left: float | None
    spent: int  # in the period, by Studio
    outside: int  # in the period
    topups: int  # in the period

    @property
    def warning(self) -> bool:
        return self.days_left is not None and self.days_left < WARN_DAYS


@dataclass(frozen=True)
class Activity:
    """Jobs in the period: outcome counts, success rate, time from submission to result."""

    counts: dict[str, int]
    success_rate: float | None  # completed / (completed + failed + uncertain)
    p50: float | None  # seconds
    p95: float | None
    jobs: int


@dataclass(frozen=True)
class HistoryFilter:
    period: Period
    search: str = ""
    states: tuple[str, ...] = ()
    username: str | None = None
    batch_id: int | None = None


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


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _as_time(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _has(column: str) -> bool:
    return column in jobs.c


def person_column() -> str:
    """Who a job belongs to: the signed-in owner when the ledger records one, else the
    username sent with the request."""
    return "owner" if _has("owner") else "username"


# --------------------------------------------------------------------------- the readings


def _flows(conn: sa.Connection) -> sa.CTE:
    """Every reading in server order, with what happened since the previous one.

    Columns: `seq` (server order), `at`, `credits` (the reading), `prev` (the previous reading),
    `excess` (prev − charge − credits: > 0 used outside Studio, < 0 a top-up or refund),
    `seen_at` (a running maximum of `at`, so days follow the server order), `job_id`.
    """
    order = (credit_readings.c.at, credit_readings.c.id)
    raw = sa.select(
        credit_readings.c.id,
        credit_readings.c.at,
        credit_readings.c.job_id,
        credit_readings.c.credits_before.label("credits"),
        sa.func.lag(credit_readings.c.at).over(order_by=order).label("prev_at"),
        sa.func.lag(credit_readings.c.credits_before).over(order_by=order).label("prev_credits"),
    ).cte("usage_raw")
    breaks = sa.case(
        (raw.c.prev_at.is_(None), 1),
        (_seconds(conn, raw.c.at, raw.c.prev_at) > BURST_GAP, 1),
        (sa.func.abs(raw.c.credits - raw.c.prev_credits) > BURST_JUMP, 1),
        else_=0,
    )
    bursts = sa.select(
        raw.c.id,
        raw.c.at,
        raw.c.job_id,
        raw.c.credits,
        sa.func.sum(breaks).over(order_by=(raw.c.at, raw.c.id), rows=(None, 0)).label("burst"),
    ).cte("usage_bursts")
    ordered = sa.select(
        bursts.c.id,
        bursts.c.at,
        bursts.c.job_id,
        bursts.c.credits,
        sa.func.row_number()
        .over(order_by=(bursts.c.burst, bursts.c.credits.desc(), bursts.c.at, bursts.c.id))
        .label("seq"),
    ).cte("usage_ordered")
    by_seq = ordered.c.seq
    flows = sa.select(
        ordered.c.seq,
        ordered.c.at,
        ordered.c.job_id,
        ordered.c.credits,
        sa.func.lag(ordered.c.credits).over(order_by=by_seq).label("prev"),
        sa.func.max(ordered.c.at).over(order_by=by_seq, rows=(None, 0)).label("seen_at"),
    ).cte("usage_flows")
    return flows


def _excess(flows: sa.CTE) -> Any:
    return flows.c.prev - CREDITS_PER_JOB - flows.c.credits


def _positive(value: Any) -> Any:
    return sa.case((value > 0, value), else_=0)


def statement(ledger: Ledger, period: Period) -> list[StatementDay]:
    """The daily statement for the days in `period` that have readings, oldest first."""
    with ledger.read_connection() as conn:
        flows = _flows(conn)
        day = _day(conn, flows.c.seen_at)
        excess = _excess(flows)
        per_reading = sa.select(
            day.label("day"),
            flows.c.seen_at,
            flows.c.credits,
            excess.label("excess"),
            sa.func.first_value(sa.func.coalesce(flows.c.prev - CREDITS_PER_JOB, flows.c.credits))
            .over(partition_by=day, order_by=flows.c.seq)
            .label("opening"),
            sa.func.last_value(flows.c.credits)
            .over(partition_by=day, order_by=flows.c.seq, rows=(None, None))
            .label("last_reading"),
        ).cte("usage_days")
        query = (
            sa.select(
                per_reading.c.day,
                sa.func.max(per_reading.c.opening),
                sa.func.count() * CREDITS_PER_JOB,
                sa.func.coalesce(sa.func.sum(_positive(per_reading.c.excess)), 0),
                sa.func.coalesce(sa.func.sum(_positive(-per_reading.c.excess)), 0),
                sa.func.max(per_reading.c.last_reading) - CREDITS_PER_JOB,
            )
            .group_by(per_reading.c.day)
            .having(sa.func.min(per_reading.c.seen_at) < period.until)
            .order_by(per_reading.c.day)
        )
        if period.since is not None:
            query = query.having(sa.func.min(per_reading.c.seen_at) >= period.since)
        days = [
            StatementDay(_as_date(d), int(o), int(s), int(out), int(up), int(c))
            for d, o, s, out, up, c in conn.execute(query)
        ]
        refund = _latest_refund(conn, flows)
    if days and refund and days[-1].day == _latest_day(ledger):
        last = days[-1]
        days[-1] = StatementDay(
            last.day, last.opening, last.spent, last.outside, last.topups + refund,
            last.closing + refund,
        )  # fmt: skip
    return days


def _latest_refund(conn: sa.Connection, flows: sa.CTE) -> int:
    """CREDITS_PER_JOB when the latest reading's job failed on the server (it was refunded)."""
    latest = sa.select(flows.c.job_id).order_by(flows.c.seq.desc()).limit(1).scalar_subquery()
    failed = sa.select(sa.func.count()).where(
        jobs.c.job_id == latest, jobs.c.state == JobState.FAILED.value
    )
    return CREDITS_PER_JOB if conn.execute(failed).scalar() else 0


def _latest_day(ledger: Ledger) -> date | None:
    with ledger.read_connection() as conn:
        latest = conn.execute(sa.select(sa.func.max(credit_readings.c.at))).scalar()
    return None if latest is None else _as_time(latest).date()


def balance(ledger: Ledger, period: Period, now: datetime | None = None) -> Balance:
    """The metrics: balance, burn rates, run-out date, and the period's totals."""
    now = now or datetime.now(UTC)
    with ledger.read_connection() as conn:
        flows = _flows(conn)
        latest = conn.execute(
            sa.select(flows.c.credits, flows.c.seen_at).order_by(flows.c.seq.desc()).limit(1)
        ).first()
        refund = _latest_refund(conn, flows) if latest else 0
        first_at = conn.execute(sa.select(sa.func.min(credit_readings.c.at))).scalar()
        used = CREDITS_PER_JOB + _positive(_excess(flows))
        burns = []
        for days in (7, 30):
            since = now - timedelta(days=days)
            total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(used), 0)).where(flows.c.seen_at >= since)
            ).scalar()
            # A ledger younger than the window: its days so far (at least one), not the window.
            known = days if first_at is None else (now - _as_time(first_at)).total_seconds() / 86400
            span = max(1.0, min(float(days), known))
            burns.append(float(total or 0) / span)
    days_in = statement(ledger, period)
    if latest is None:
        current, as_of = None, None
    else:
        current = int(latest.credits) - CREDITS_PER_JOB + refund
        as_of = _as_time(latest.seen_at)
    burn_7, burn_30 = burns
    days_left = None
    runs_out = None
    if current is not None and burn_7 > 0:
        days_left = max(0.0, current / burn_7)
        runs_out = (now + timedelta(days=days_left)).date()
    return Balance(
        balance=current,
        as_of=as_of,
        burn_7=burn_7,
        burn_30=burn_30,
        runs_out=runs_out,
        days_left=days_left,
        spent=sum(day.spent for day in days_in),
        outside=sum(day.outside for day in days_in),
        topups=sum(day.topups for day in days_in),
    )


def readings_series(
    ledger: Ledger, period: Period, points: int = 1500
) -> list[tuple[datetime, int]]:
    """The balance after each reading in the period, for a step chart: at most about `points`
    (the last reading of each time bucket when there are more)."""
    with ledger.read_connection() as conn:
        flows = _flows(conn)
        where = [flows.c.seen_at < period.until]
        if period.since is not None:
            where.append(flows.c.seen_at >= period.since)
        bounds = conn.execute(
            sa.select(sa.func.min(flows.c.seen_at), sa.func.max(flows.c.seen_at), sa.func.count())
            .where(*where)
        ).first()
        if bounds is None or not bounds[2]:
            return []
        start, end, count = _as_time(bounds[0]), _as_time(bounds[1]), int(bounds[2])
        if count <= points:
            bucket: Any = flows.c.seq
        else:
            width = max(1.0, (end - start).total_seconds() / points)
            origin = sa.literal(start.replace(tzinfo=None), sa.DateTime)
            bucket = sa.cast(_seconds(conn, flows.c.seen_at, origin) / width, sa.Integer)
        ranked = (
            sa.select(
                flows.c.seen_at,
                flows.c.credits,
                sa.func.row_number()
                .over(partition_by=bucket, order_by=flows.c.seq.desc())
                .label("rank"),
            )
            .where(*where)
            .cte("usage_series")
        )
        rows = conn.execute(
            sa.select(ranked.c.seen_at, ranked.c.credits)
            .where(ranked.c.rank == 1)
            .order_by(ranked.c.seen_at)
        ).all()
    return [(_as_time(at), int(credits) - CREDITS_PER_JOB) for at, credits in rows]


# --------------------------------------------------------------------------- jobs


def _source_label() -> Any:
    return sa.case(
        (batches.c.source == "try-on", "Try-on"),
        (sa.or_(batches.c.source.like("cli:%"), batches.c.private == sa.true()), "CLI"),
        else_="Batch",
    )


def _in_period(column: Any, period: Period) -> sa.ColumnElement[bool]:
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
            .where(jobs.c.state.in_(OUTCOMES), _in_period(jobs.c.created_at, period))
            .group_by(day, jobs.c.state)
            .order_by(day)
        )
        return [(_as_date(d), str(state), int(n)) for d, state, n in conn.execute(query)]


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
            _in_period(jobs.c.created_at, period),
        )
        .cte("usage_durations")
    )
    found = []
    for share in (0.50, 0.95):
        value = conn.execute(
            sa.select(sa.func.min(durations.c.seconds)).where(
                durations.c.rank * 1.0 >= durations.c.total * share
            )
        ).scalar()
        found.append(None if value is None else float(value))
    return found[0], found[1]


def activity(ledger: Ledger, period: Period) -> Activity:
    with ledger.read_connection() as conn:
        counts = {state: 0 for state in OUTCOME_ORDER}
        query = (
            sa.select(jobs.c.state, sa.func.count())
            .where(_in_period(jobs.c.created_at, period))
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
        key: Any = _source_label()
    elif by in ("username", "owner") and _has(by):
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
    columns = [key.label("key"), sa.func.count().label("jobs"), completed.label("completed"),
               failed.label("failed"), charged.label("credits"), passed.label("passed"),
               reviewed.label("reviewed")]  # fmt: skip
    if by == "batch":
        columns += [sa.func.max(batches.c.name).label("name"),
                    sa.func.max(batches.c.created_at).label("created_at")]  # fmt: skip
    query = (
        sa.select(*columns)
        .select_from(jobs.join(batches, jobs.c.batch_id == batches.c.id))
        .where(_in_period(jobs.c.created_at, period))
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
            "credits": int(row["credits"] or 0) * CREDITS_PER_JOB,
            "success rate": done / (done + bad) if done + bad else None,
            "pass rate": int(row["passed"]) / reviewed_n if reviewed_n else None,
        }
        if by == "batch":
            item["batch_id"] = int(row["key"])
        table.append(item)
    return table


# --------------------------------------------------------------------------- history


HISTORY_COLUMNS = ("id", "created_at", "source", "batch_id", "batch", "username", "state",
                   "job_id", "target", "garment", "result_path", "thumbnail_path", "error",
                   "submitted_at", "finished_at")  # fmt: skip


def _history_query(filters: HistoryFilter) -> sa.Select[Any]:
    columns = [
        jobs.c.id, jobs.c.created_at, _source_label().label("source"), jobs.c.batch_id,
        batches.c.name.label("batch"), jobs.c.username, jobs.c.state, jobs.c.job_id,
        jobs.c.target, jobs.c.garment, jobs.c.result_path, jobs.c.thumbnail_path,
        jobs.c.error, jobs.c.submitted_at, jobs.c.finished_at,
    ]  # fmt: skip
    query = (
        sa.select(*columns)
        .select_from(jobs.join(batches, jobs.c.batch_id == batches.c.id))
        .where(_in_period(jobs.c.created_at, filters.period))
    )
    if filters.states:
        query = query.where(jobs.c.state.in_(list(filters.states)))
    if filters.username:
        query = query.where(jobs.c[person_column()] == filters.username)
    if filters.batch_id is not None:
        query = query.where(jobs.c.batch_id == filters.batch_id)
    text = filters.search.strip().lower()
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        fields = (jobs.c.target, jobs.c.garment, jobs.c.username, jobs.c.error, jobs.c.job_id,
                  batches.c.name)  # fmt: skip
        query = query.where(
            sa.or_(*(sa.func.lower(f).like(pattern, escape="\\") for f in fields))
        )
    return query


def history_count(ledger: Ledger, filters: HistoryFilter) -> int:
    query = sa.select(sa.func.count()).select_from(_history_query(filters).subquery())
    with ledger.read_connection() as conn:
        return int(conn.execute(query).scalar() or 0)


def history_page(ledger: Ledger, filters: HistoryFilter, page: int, size: int) -> list[dict]:
    """One page (from 1) of the filtered history, newest first."""
    query = _history_query(filters).order_by(jobs.c.id.desc()).limit(size)
    query = query.offset(max(0, page - 1) * size)
    with ledger.read_connection() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def usernames(ledger: Ledger) -> list[str]:
    column = jobs.c[person_column()]
    query = sa.select(column).where(column.is_not(None)).group_by(column).order_by(column)
    with ledger.read_connection() as conn:
        return [str(name) for name in conn.execute(query).scalars()]


# --------------------------------------------------------------------------- exports


def _csv(header: list[str], rows: Iterator[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else _cell(value) for value in row])
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return _as_time(value).isoformat(timespec="seconds")
    text = value if not isinstance(value, str) else value
    # Spreadsheets run cells that start with = + - @ as formulas: keep them text.
    if isinstance(text, str) and text[:1] in ("=", "+", "-", "@"):
        return "'" + text
    return text


def history_csv(ledger: Ledger, filters: HistoryFilter) -> str:
    """The filtered history (every page), newest first, as CSV."""
    header = ["row", "created_at", "source", "batch_id", "batch", "username", "state",
              "job_id", "target", "garment", "result_path", "error", "submitted_at",
              "finished_at"]  # fmt: skip
    query = _history_query(filters).order_by(jobs.c.id.desc())

    def rows(conn: sa.Connection) -> Iterator[list[Any]]:
        for row in conn.execution_options(yield_per=1000).execute(query).mappings():
            yield [row["id"], row["created_at"], row["source"], row["batch_id"], row["batch"],
                   row["username"], row["state"], row["job_id"], row["target"], row["garment"],
                   row["result_path"], row["error"], row["submitted_at"],
                   row["finished_at"]]  # fmt: skip

    with ledger.read_connection() as conn:
        return _csv(header, rows(conn))


def statement_csv(ledger: Ledger, period: Period) -> str:
    days = statement(ledger, period)
    header = ["day", "opening", "spent_by_studio", "used_outside_studio", "topups_and_refunds",
              "closing"]  # fmt: skip
    return _csv(
        header,
        iter([[d.day.isoformat(), d.opening, d.spent, d.outside, d.topups, d.closing]
              for d in days]),  # fmt: skip
    )
