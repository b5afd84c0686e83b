"""The Usage page's figures and tables: metrics, statement, breakdowns, history and exports."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from PIL import Image

from mirrago import usage
from mirrago.backend import Backend
from mirrago.datadir import file_version
from mirrago.images import data_url
from mirrago.ledger import JobState, Ledger, Origin
from mirrago.ui import session
from mirrago.ui.job_card import sample_for, seconds_text
from mirrago.ui.usage.data import filter_choices, person_column, viewer
from mirrago.usage import Activity, Balance, HistoryFilter, Period, StatementDay

PAGE_SIZE = 20
THUMB_SIDE = 72
# The history's State filter, in this order; each state in its one set of words.
STATE_LABELS = {
    state.value: state.words
    for state in (
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.UNCERTAIN,
        JobState.CANCELED,
        JobState.QUEUED,
        JobState.SUBMITTING,
        JobState.SUBMITTED,
    )
}


def _day(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%b %d, %Y")


def metrics_row(metrics: Balance, period: Period) -> None:
    """Balance, burn rate, run-out date, spent and outside use, with a warning when short."""
    # Six tracks, wrapping on narrow screens; the figure only this page can give spans two.
    cells = st.grid(6, min_column_width=140)
    balance, burn, runs_out, spent = (cells.cell().container(border=True) for _ in range(4))
    outside = cells.cell(column_span=2).container(border=True)
    as_of = metrics.as_of.strftime("%Y-%m-%d %H:%M UTC") if metrics.as_of else "no reading yet"
    balance.metric(
        "Balance",
        None if metrics.balance is None else f"{metrics.balance:,}",
        delta=f"{metrics.as_of:%b %d %H:%M} UTC" if metrics.as_of else None,
        delta_color="off",
        delta_arrow="off",
        help=f"The latest reading ({as_of}) less the job it was read for, when that job was "
        "charged (a failed job is refunded).",
    )
    burn.metric(
        "Credits/day",
        f"{metrics.burn_7:,.1f}",
        delta=f"30 days: {metrics.burn_30:,.1f}",
        delta_color="off",
        delta_arrow="off",
        help="The burn rate: credits used per day (by Studio and outside it) over the last 7 "
        "days, and 30.",
    )
    if metrics.runs_out is None:  # the reason fits a delta pill, not a metric's large figure
        runs_out.metric(
            "Runs out",
            "—",
            delta="too little history" if metrics.forecast_note else "not at this rate",
            delta_color="off",
            delta_arrow="off",
            help=f"No forecast yet: {metrics.forecast_note}."
            if metrics.forecast_note
            else "No credits used in the last 7 days.",
        )
    else:
        runs_out.metric(
            "Runs out",
            f"{metrics.runs_out:%b} {metrics.runs_out.day}",
            delta=(
                f"in {metrics.days_left:,.0f} days, {metrics.runs_out.year}"
                if metrics.days_left
                else "now"
            ),
            delta_color="inverse" if metrics.warning else "off",
            delta_arrow="off",
            help="When the balance reaches zero at the 7-day burn rate.",
        )
    spent.metric(
        "Spent",
        f"{metrics.spent:,}",
        delta=f"top-ups +{metrics.topups:,}",
        delta_color="off",
        delta_arrow="off",
        help=f"Credits Studio's submissions cost from {period.label()}. Top-ups: rises of the "
        "balance in that range (payments, and refunds of failed jobs).",
    )
    outside.metric(
        "Used outside Studio",
        f"{metrics.outside:,}",
        help=usage.RULE,
        delta="none" if not metrics.outside else "spent elsewhere",
        delta_color="off" if not metrics.outside else "inverse",
        delta_arrow="off",
    )
    if metrics.warning and metrics.runs_out is not None:
        st.warning(
            f"About {metrics.days_left:.1f} days of credits left at the 7-day rate: top up "
            f"before {metrics.runs_out:%b %d}.",
            icon=":material/warning:",
        )


def statement_table(days: list[StatementDay]) -> None:
    if not days:
        st.caption("No credit readings in this range.")
        return
    frame = pd.DataFrame(
        [(d.day, d.opening, d.spent, d.outside, d.topups, d.closing) for d in reversed(days)],
        columns=[
            "Day",
            "Opening",
            "Spent by Studio",
            "Used outside Studio",
            "Top-ups & refunds",
            "Closing",
        ],
    )
    number = st.column_config.NumberColumn(format="localized")
    styled = frame.style.map(
        lambda v: "color: #C92A2A; font-weight: 600" if v else "color: #ADB5BD",
        subset=["Used outside Studio"],
    ).map(lambda v: "color: #2B8A3E" if v else "color: #ADB5BD", subset=["Top-ups & refunds"])
    st.dataframe(
        styled,
        hide_index=True,
        height=min(35 * (len(frame) + 1) + 3, 400),
        column_config={
            "Day": st.column_config.DateColumn(format="MMM D, YYYY"),
            **{c: number for c in frame.columns[1:]},
        },
    )


def activity_figures(result: Activity) -> None:
    done, rate, p50, p95 = st.columns(4)
    done.metric("Jobs", f"{result.jobs:,}", help="Jobs created in the range, in any state.")
    rate.metric(
        "Success rate",
        "—" if result.success_rate is None else f"{result.success_rate:.1%}",
        help="Completed out of completed, failed and uncertain jobs.",
    )
    p50.metric(
        "Time to result (p50)",
        "—" if result.p50 is None else seconds_text(result.p50),
        help="From submission to completion; half the jobs took less.",
    )
    p95.metric(
        "Time to result (p95)",
        "—" if result.p95 is None else seconds_text(result.p95),
        help="95 in 100 completed jobs took less than this.",
    )


def breakdown_table(rows: list[dict[str, Any]], by: str, title: str) -> None:
    st.markdown(f"**{title}**")
    if not rows:
        st.caption("No jobs in this range.")
        return
    frame = pd.DataFrame(rows).drop(columns=["batch_id"], errors="ignore")
    st.dataframe(
        frame,
        hide_index=True,
        height=min(35 * (len(frame) + 1) + 3, 300),
        placeholder="—",
        column_config={
            by: st.column_config.TextColumn(by.capitalize()),
            **{
                c: st.column_config.NumberColumn(c.capitalize(), format="localized")
                for c in ("jobs", "completed", "failed", "credits")
            },
            "success rate": st.column_config.NumberColumn("Success", format="percent"),
            "pass rate": st.column_config.NumberColumn(
                "Review pass", format="percent", help="Reviewed jobs marked as passing"
            ),
        },
    )


# --------------------------------------------------------------------------- history


@st.cache_data(max_entries=2000, show_spinner=False)
def _thumb(path: str, mtime: float) -> str | None:
    """A small JPEG data URL of a local image (cached by path and modification time)."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (THUMB_SIDE * 2, THUMB_SIDE * 2))
            image = image.convert("RGB")
            image.thumbnail((THUMB_SIDE, THUMB_SIDE))
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=70)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return data_url(out.getvalue())


def _local_path(value: str | None, backend: Backend) -> Path | None:
    if not value:
        return None
    sample = sample_for(value, backend)
    if sample is not None:
        return sample.path
    return None if "://" in value else Path(value)


def _thumb_for(value: str | None, backend: Backend) -> str | None:
    path = _local_path(value, backend)
    mtime = file_version(path)
    return None if mtime is None else _thumb(str(path), mtime)


def history_filters(ledger: Ledger, period: Period) -> HistoryFilter:
    search, states, person, batch = st.columns([3, 3, 2, 2])
    text = search.text_input(
        "Search", key="usage-search", placeholder="input, username, error, job id…"
    )
    chosen = states.multiselect(
        "State", list(STATE_LABELS), key="usage-states", format_func=STATE_LABELS.__getitem__
    )
    people, batches = filter_choices(ledger)
    column = person_column()
    who = person.selectbox(
        column.capitalize(), people, index=None, key="usage-person", placeholder="Anyone"
    )
    choices = dict(batches)
    batch_id = batch.selectbox(
        "Batch",
        list(choices),
        index=None,
        key="usage-batch",
        format_func=choices.get,
        placeholder="Any batch",
    )
    private, owner = viewer()
    return HistoryFilter(period, text[:200], tuple(chosen), who, batch_id, column, private, owner)


def _open_link(row_id: int) -> str:
    tag = session.ledger_tag()
    return f"/try-on?job={row_id}" + (f"@{tag}" if tag else "")


def _note(row: dict[str, Any], filters: HistoryFilter) -> str:
    if row["deleted_at"] is not None:
        return "Deleted by its owner"
    if filters.private and row["owner"] != filters.viewer:
        return "Someone else's try-on: only its owner sees its pictures and details"
    return row["error"] or ""


def history_table(ledger: Ledger, backend: Backend, filters: HistoryFilter) -> None:
    """Every job that matches, newest first, a page at a time; each row opens its detail."""
    total = usage.history_count(ledger, filters)
    if not total:
        st.caption("No jobs match.")
        return
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    number = int(st.session_state.get("usage-page") or 1)
    if number > pages:  # the filters shrank the history: back to its first page
        number = st.session_state["usage-page"] = 1
    rows = usage.history_page(ledger, filters, number, PAGE_SIZE)
    frame = pd.DataFrame(
        {
            "Open": [_open_link(r["id"]) for r in rows],
            "Time": [r["created_at"].strftime("%Y-%m-%d %H:%M") for r in rows],
            "Source": [r["source"] for r in rows],
            "Batch": [
                "" if Origin.of(r["origin"]).is_single else f"#{r['batch_id']} {r['batch']}"
                for r in rows
            ],
            "Username": [r["username"] or "" for r in rows],
            **({"Owner": [r["owner"] or "" for r in rows]} if filters.person == "owner" else {}),
            "State": [STATE_LABELS.get(r["state"], r["state"]) for r in rows],
            "Person": [_thumb_for(r["target"], backend) for r in rows],
            "Garment": [_thumb_for(r["garment"], backend) for r in rows],
            "Result": [_thumb_for(r["thumbnail_path"] or r["result_path"], backend) for r in rows],
            "Error": [_note(r, filters) for r in rows],
        }
    )
    image = st.column_config.ImageColumn(width="small")
    st.dataframe(
        frame,
        hide_index=True,
        row_height=56,
        key="usage-history-table",
        placeholder="",
        height=56 * len(frame) + 40,
        column_config={
            "Open": st.column_config.LinkColumn(
                "Open",
                display_text="Open ↗",
                width="small",
                help="The job's detail on the Try-on page",
            ),
            "Person": image,
            "Garment": image,
            "Result": image,
            "Error": st.column_config.TextColumn(width="large"),
        },
    )
    first = (number - 1) * PAGE_SIZE + 1
    shown = f"{first}–{first + len(rows) - 1}"
    left, right = st.columns([3, 2], vertical_alignment="center")
    left.caption(f"Jobs {shown} of {total:,}, newest first. Times are UTC.")
    with right:
        st.pagination(pages, key="usage-page", width="stretch")


def _csv_button(label: str, build: Callable[[], str], name: str, key: str) -> None:
    st.download_button(
        label,
        data=build,
        file_name=f"mirrago-{name}-{datetime.now():%Y%m%d-%H%M}.csv",
        mime="text/csv",
        on_click="ignore",
        icon=":material/download:",
        key=key,
    )


def history_export(ledger: Ledger, filters: HistoryFilter) -> None:
    """The filtered history as CSV, built only when clicked."""
    _csv_button(
        "Export history (CSV)",
        lambda: usage.history_csv(ledger, filters),
        "history",
        "usage-export-history",
    )


def statement_export(ledger: Ledger, period: Period) -> None:
    """The daily statement of the range as CSV, built only when clicked."""
    _csv_button(
        "Export statement (CSV)",
        lambda: usage.statement_csv(ledger, period),
        "statement",
        "usage-export-statement",
    )
