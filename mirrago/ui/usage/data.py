"""The Usage page's figures, computed once per change of the ledger (a cache keyed by the
ledger's data version), so filtering and paging the history do not recompute them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import streamlit as st

from mirrago import usage
from mirrago.ledger import Ledger
from mirrago.ui import identity
from mirrago.ui.usage.charts import credit_spec, jobs_spec
from mirrago.usage import Activity, Overview, Period


@dataclass(frozen=True)
class Figures:
    overview: Overview
    activity: Activity
    per_day: list[tuple[date, str, int]]
    by_source: list[dict[str, Any]]
    by_person: list[dict[str, Any]]
    by_batch: list[dict[str, Any]]
    marks: list[tuple[datetime, str, int]]
    credit_chart: dict[str, Any] | None  # Vega-Lite specs, built with the figures
    legend: str
    jobs_chart: dict[str, Any] | None


@st.cache_data(ttl=900, max_entries=24, show_spinner=False)
def _figures(
    _ledger: Ledger,
    where: str,
    version: tuple[Any, ...],
    span: tuple[Any, ...],
    minute: datetime,
    person: str,
) -> Figures:
    period = Period(*span)
    overview = usage.overview(_ledger, period, now=minute)
    marks = usage.batch_marks(_ledger, period)
    per_day = usage.jobs_per_day(_ledger, period)
    credit_chart, legend = None, ""
    if overview.series or overview.metrics.balance is not None:
        outside = [
            (d.last_at, d.closing, d.outside) for d in overview.statement if d.outside and d.last_at
        ]
        credit_chart, legend = credit_spec(
            overview.series, marks, outside, overview.metrics, period, minute
        )
    return Figures(
        overview=overview,
        activity=usage.activity(_ledger, period),
        per_day=per_day,
        by_source=usage.breakdown(_ledger, period, "source"),
        by_person=usage.breakdown(_ledger, period, person),
        by_batch=usage.breakdown(_ledger, period, "batch"),
        marks=marks,
        credit_chart=credit_chart,
        legend=legend,
        jobs_chart=jobs_spec(per_day) if per_day else None,
    )


def figures(ledger: Ledger, period: Period) -> Figures:
    """Every figure of the period, as of this minute."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    version = usage.data_version(ledger)
    span = (period.start, period.end)
    return _figures(ledger, ledger.display_url, version, span, minute, person_column())


def person_column() -> str:
    """Who a job belongs to on this page: its signed-in owner when the app has sign-in, else
    the username sent with the request."""
    return "owner" if identity.sign_in_configured() else "username"


def viewer() -> tuple[bool, str | None]:
    """(private, owner): with sign-in, other people's inputs, results and details are hidden."""
    return identity.sign_in_configured(), identity.current_owner()


@st.cache_data(ttl=900, max_entries=8, show_spinner=False)
def _choices(
    _ledger: Ledger, where: str, version: tuple[Any, ...], person: str, owner: str | None
) -> tuple[list[str], list[tuple[int, str]]]:
    return usage.usernames(_ledger, person, owner), usage.batch_choices(_ledger)


def filter_choices(ledger: Ledger) -> tuple[list[str], list[tuple[int, str]]]:
    """The people and batches the history can be filtered by."""
    private, owner = viewer()
    version = usage.data_version(ledger)
    return _choices(
        ledger, ledger.display_url, version, person_column(), owner if private else None
    )
