"""The Usage page: where the credits went, where they are going, and who spent them.

UI only: every figure comes from `mirrago.usage` (SQL over the ledger); widgets live in
`mirrago/ui/usage/`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from mirrago import usage
from mirrago.ui import session
from mirrago.ui.routing import ensure_routed
from mirrago.ui.usage.charts import show
from mirrago.ui.usage.data import Figures, figures, person_column
from mirrago.ui.usage.tables import (
    activity_figures,
    breakdown_table,
    history_export,
    history_filters,
    history_table,
    metrics_row,
    statement_export,
    statement_table,
)
from mirrago.usage import Period

ensure_routed()

RANGES = {"7 days": 7, "30 days": 30, "90 days": 90, "All": None, "Custom": -1}
NOTE = (
    ":material/info: The Mirrago API tells the credits left only when a try-on is submitted: "
    "these figures come from the balances this ledger recorded then."
)
HOW = f"""
**Balance** is the latest reading less the job it was read for, when that job was charged.
**Burn rate** counts credits used by Studio and outside it, per day, over the last 7 (and 30)
days; **Runs out** divides the balance by the 7-day rate, once there is enough history to
forecast from: a day of readings and at least {usage.FORECAST_MIN_CREDITS} credits used in the
last 7 days (before that it says "too little history").

**Used outside Studio, top-ups and refunds.** {usage.RULE} In the sandbox, every submission
costs one credit and a job that fails is refunded when it fails: the next reading is one higher
than Studio's submissions alone would leave it, which shows as a refund, never as outside use.
Every local sandbox started on this data dir (the app's, each `mirrago batch` or `mirrago try-on`)
spends from one account, so their try-ons add up to one balance.

Readings recorded a moment out of order (submissions made in parallel) are put back in the
server's order before they are compared. Days are UTC days.
"""


def _empty_state() -> None:
    st.info(
        "Nothing to show yet: the credit balance is read with every try-on. Make a first "
        "try-on and this page starts charting where your credits go.",
        icon=":material/insights:",
    )
    st.page_link("pages/try-on.py", label="Make a first try-on", icon=":material/checkroom:")


def _period() -> Period:
    today = datetime.now(UTC).date()
    choice = st.segmented_control(
        "Range",
        list(RANGES),
        default="30 days",
        required=True,
        key="usage-range",
        label_visibility="collapsed",
    )
    if RANGES[choice] != -1:
        return Period.last(RANGES[choice], today)
    picked = st.date_input(
        "Custom range",
        value=(today - timedelta(days=29), today),
        max_value=today,
        key="usage-custom",
        label_visibility="collapsed",
        format="YYYY-MM-DD",
    )
    if isinstance(picked, tuple) and len(picked) == 2:
        return Period(picked[0], picked[1])
    start = picked[0] if isinstance(picked, tuple) and picked else today
    return Period(start, start)


def _activity(found: Figures) -> None:
    activity_figures(found.activity)
    if found.jobs_chart is not None:
        show(found.jobs_chart)
    by_source, by_person = st.columns(2)
    with by_source:
        breakdown_table(found.by_source, "source", "By source")
    with by_person:
        person = person_column()
        breakdown_table(found.by_person, person, f"By {person}")
    breakdown_table(found.by_batch, "batch", "By batch")


services = session.current_services()
ledger = services.ledger

st.title("Usage")
st.caption(NOTE)
if not usage.has_activity(ledger):
    _empty_state()
    st.stop()
with st.container(horizontal=True, vertical_alignment="center"):
    period = _period()

found = figures(ledger, period)
metrics = found.overview.metrics
metrics_row(metrics, period)

st.subheader("Credits over time", anchor=False)
if found.credit_chart is not None:
    show(found.credit_chart)
    st.caption(found.legend)
else:
    st.caption("No credit readings yet: they are recorded with every submission.")

# Only the open tab is drawn (a rerun when another is picked): the page opens with one table,
# not the history's pictures and the activity's chart as well.
statement_tab, activity_tab, history_tab = st.tabs(
    ["Statement", "Activity", "History"], key="usage-tab", on_change="rerun"
)
if statement_tab.open:
    with statement_tab:
        statement_table(found.overview.statement)
        statement_export(ledger, period)
if activity_tab.open:
    with activity_tab:
        _activity(found)
if history_tab.open:
    with history_tab:
        filters = history_filters(ledger, period)
        history_table(ledger, services.backend, filters)
        history_export(ledger, filters)

with st.expander("How these figures are worked out", icon=":material/help:"):
    st.markdown(HOW)
