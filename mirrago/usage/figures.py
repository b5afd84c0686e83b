"""Where the credits went and where they are going: the balance, burn rates, the run-out
forecast and the daily statement that the Usage page and `mirrago usage` show.

The API reports the balance only as `credits_before` on each submission, so the ledger's
credit readings are the source. Every submission costs `CREDITS_PER_TRY_ON`. Between two
consecutive readings the balance should fall by exactly the credits of Studio's own submission
at the first of them; a larger fall is **used outside Studio** (another tool, a script, a leaked
key on the same account), a smaller fall or a rise is a **top-up or refund**. A failed job's
refund can only raise the balance, so it never shows as outside use (it shows as a refund).

The readings come in the server's order from queries.py; days are UTC days.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mirrago.ledger import Ledger
from mirrago.usage.history import csv_text
from mirrago.usage.queries import (
    CREDITS_PER_TRY_ON,
    Period,
    as_date,
    as_time,
    balance_series,
    day_totals,
    failed_on_server,
    latest_reading,
    reading_flows,
)

WARN_DAYS = 7
# A run-out date needs this much: a forecast from minutes of use says nonsense ("2027").
FORECAST_MIN_HISTORY = timedelta(days=1)  # from the first reading to now
FORECAST_MIN_CREDITS = 5  # used in the last 7 days
TOO_LITTLE_HISTORY = (
    "too little history to forecast: it takes a day of readings and "
    f"{FORECAST_MIN_CREDITS} credits used in the last 7 days"
)

RULE = (
    "Each submission costs 1 credit, charged when it is made. Between two readings the balance "
    "should fall by exactly Studio's own submissions; a larger fall is counted as used outside "
    "Studio, a rise as a top-up or refund (the service refunds failed jobs), so a refund never "
    "counts as outside use. Use outside Studio after the latest reading shows with the next one."
)


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class StatementDay:
    """One day of the statement: opening − spent − outside + top-ups = closing."""

    day: date
    opening: int
    spent: int  # by Studio's submissions
    outside: int  # used outside Studio
    topups: int  # top-ups and refunds
    closing: int
    last_at: datetime | None = None  # the day's last reading


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
    forecast_note: str | None = None  # why there is no run-out date though credits are used

    @property
    def warning(self) -> bool:
        return self.days_left is not None and self.days_left < WARN_DAYS


def metric_lines(metrics: Balance) -> list[tuple[str, str]]:
    """The metrics as (label, text) lines, for the CLI."""
    runs_out = metrics.forecast_note or "not at this rate"
    if metrics.runs_out is not None:
        runs_out = f"{metrics.runs_out.isoformat()} (in {metrics.days_left or 0:,.0f} days)"
    as_of = "" if metrics.as_of is None else f"  (read {metrics.as_of:%Y-%m-%d %H:%M} UTC)"
    balance = "-" if metrics.balance is None else f"{metrics.balance:,}"
    return [
        ("Balance", balance + as_of),
        ("Burn rate", f"{metrics.burn_7:,.1f} / day (7 days), {metrics.burn_30:,.1f} / day (30)"),
        ("Runs out", runs_out),
        ("Spent by Studio", f"{metrics.spent:,}"),
        ("Used outside Studio", f"{metrics.outside:,}"),
        ("Top-ups & refunds", f"{metrics.topups:,}"),
    ]


@dataclass(frozen=True)
class Overview:
    """The balance metrics, the statement and the chart's series of one period."""

    metrics: Balance
    statement: list[StatementDay]
    series: list[tuple[datetime, int]]


@dataclass(frozen=True)
class _Summary:
    credits: int | None  # the latest reading
    seen_at: datetime | None
    job_id: str | None
    used_7: int  # credits used (Studio's and outside) in the last 7 days
    used_30: int
    first_at: datetime | None


def _all_days(
    conn: sa.Connection, flows: sa.CTE, now: datetime
) -> tuple[list[StatementDay], _Summary]:
    """The statement of every day with readings, and the summary of all readings: one query,
    one row per day. Each day opens at the previous day's close (the first at the first
    reading) and closes at opening − spent − outside + top-ups, which is the balance after its
    last reading (the tests check the last day's against the latest reading)."""
    days: list[StatementDay] = []
    latest_row, used_7, used_30, first = None, 0, 0, None
    for row in day_totals(conn, flows, now):
        d, spent, outside, topups, first_reading, last, seen_at, job_id, u7, u30, start, end = row
        opening = days[-1].closing if days else int(first_reading)
        closing = opening - int(spent) - int(outside) + int(topups)
        days.append(
            StatementDay(
                as_date(d), opening, int(spent), int(outside), int(topups), closing, as_time(end)
            )
        )
        used_7, used_30 = used_7 + int(u7 or 0), used_30 + int(u30 or 0)
        first = first if first is not None else as_time(start)
        if seen_at is not None:
            latest_row = (int(last), as_time(seen_at), job_id)
    credits, seen, job = latest_row or (None, None, None)
    return days, _Summary(credits, seen, job, used_7, used_30, first)


def _refunded(conn: sa.Connection, job_id: str | None) -> int:
    """CREDITS_PER_TRY_ON when that job failed on the server (the service refunded it)."""
    return CREDITS_PER_TRY_ON if job_id is not None and failed_on_server(conn, job_id) else 0


@dataclass(frozen=True)
class CreditBalance:
    """The balance now, as every page shows it: the latest reading (in the server's order)
    less the job it was read for, unless that job failed and was refunded."""

    credits: int
    as_of: datetime  # when that reading was recorded
    refunded: bool  # the latest job failed: its credit came back


def _balance_now(conn: sa.Connection) -> CreditBalance | None:
    latest = latest_reading(conn)
    if latest is None:
        return None
    credits, seen_at, job_id = latest
    refund = _refunded(conn, job_id)
    return CreditBalance(int(credits) - CREDITS_PER_TRY_ON + refund, as_time(seen_at), bool(refund))


def latest_balance(ledger: Ledger) -> CreditBalance | None:
    """The balance now (None before the first reading): the one figure the sidebar, the Batch
    page and the Usage page show. Reads only the newest readings, so it is cheap per rerun."""
    with ledger.read_connection() as conn:
        return _balance_now(conn)


def _burn(used: Any, days: int, first_at: datetime | None, now: datetime) -> float:
    # A ledger younger than the window: its days so far (at least one), not the window.
    known = days if first_at is None else (now - first_at).total_seconds() / 86400
    return float(used or 0) / max(1.0, min(float(days), known))


def overview(
    ledger: Ledger, period: Period, now: datetime | None = None, points: int = 1500
) -> Overview:
    """Metrics, statement and chart series of `period` (three SQL queries over the readings)."""
    now = now or datetime.now(UTC)
    with ledger.read_connection() as conn:
        flows = reading_flows(conn)
        every_day, summary = _all_days(conn, flows, now)
        balance_now = _balance_now(conn)
        series = balance_series(conn, flows, period, summary.first_at, summary.seen_at, points)
    days = [
        d
        for d in every_day
        if (period.start is None or d.day >= period.start) and d.day <= period.end
    ]
    current = None if balance_now is None else balance_now.credits
    if (
        balance_now is not None
        and balance_now.refunded
        and days
        and days[-1].day == balance_now.as_of.date()
    ):  # the refund is today's news
        last, refund = days[-1], CREDITS_PER_TRY_ON
        days[-1] = replace(last, topups=last.topups + refund, closing=last.closing + refund)
    burn_7 = _burn(summary.used_7, 7, summary.first_at, now)
    burn_30 = _burn(summary.used_30, 30, summary.first_at, now)
    days_left = runs_out = note = None
    if current is not None and burn_7 > 0:
        history = timedelta(0) if summary.first_at is None else now - summary.first_at
        if history < FORECAST_MIN_HISTORY or summary.used_7 < FORECAST_MIN_CREDITS:
            note = TOO_LITTLE_HISTORY
        else:
            days_left = max(0.0, current / burn_7)
            runs_out = (now + timedelta(days=days_left)).date()
    metrics = Balance(
        balance=current,
        as_of=None if balance_now is None else balance_now.as_of,
        burn_7=burn_7,
        burn_30=burn_30,
        runs_out=runs_out,
        days_left=days_left,
        spent=sum(day.spent for day in days),
        outside=sum(day.outside for day in days),
        topups=sum(day.topups for day in days),
        forecast_note=note,
    )
    return Overview(metrics, days, series)


def statement(ledger: Ledger, period: Period) -> list[StatementDay]:
    """The daily statement for the days in `period` that have readings, oldest first."""
    return overview(ledger, period).statement


def balance(ledger: Ledger, period: Period, now: datetime | None = None) -> Balance:
    """The metrics: balance, burn rates, run-out date, and the period's totals."""
    return overview(ledger, period, now).metrics


def readings_series(
    ledger: Ledger, period: Period, points: int = 1500
) -> list[tuple[datetime, int]]:
    return overview(ledger, period, points=points).series


def statement_csv(ledger: Ledger, period: Period) -> str:
    days = statement(ledger, period)
    header = [
        "day",
        "opening",
        "spent_by_studio",
        "used_outside_studio",
        "topups_and_refunds",
        "closing",
    ]
    return csv_text(
        header,
        iter(
            [[d.day.isoformat(), d.opening, d.spent, d.outside, d.topups, d.closing] for d in days]
        ),
    )
