"""The open batch on the Batch page: which one (session, `?batch=<id>`, else the latest), its
live progress, and the controls that steer it (pause, resume, cancel queued, retry failed).

The page only reads the ledger and asks the runner/ledger to change rows; the runner of the
server process does the work, so a refresh or another browser shows the same batch.
"""

from __future__ import annotations

import streamlit as st

from mirrago import batchprogress
from mirrago.batchprogress import BatchProgress
from mirrago.durations import duration_text
from mirrago.ledger import BatchRecord, JobRecord, JobState
from mirrago.services import Services
from mirrago.ui import session
from mirrago.ui.plain import md_text

OPEN_KEY = "batch-open"
QUERY_KEY = "batch"
STATE_BADGES = {
    "running": ("Running", "blue", ":material/autorenew:"),
    "paused": ("Paused", "orange", ":material/pause:"),
    "finished": ("Finished", "green", ":material/check_circle:"),
    "stopped": ("Stopped", "gray", ":material/stop_circle:"),
    "empty": ("Empty", "gray", ":material/inbox:"),
}
UNCERTAIN_MEANING = (
    "Unconfirmed rows were being sent when the connection or the runner stopped: the service may "
    "or may not have made them, and may have spent a credit. Retry one only when you are sure "
    "it was not made (a retry can spend another credit)."
)


def open_batch(batch_id: int | None) -> None:
    """Show batch `batch_id` in this session and in the URL (`?batch=12`, `?batch=12@host` on
    a live endpoint connected from the sidebar: each backend keeps its own ledger)."""
    if batch_id is None:
        st.session_state.pop(OPEN_KEY, None)
        st.query_params.pop(QUERY_KEY, None)
        return
    st.session_state[OPEN_KEY] = batch_id
    tag = session.ledger_tag()
    st.query_params[QUERY_KEY] = f"{batch_id}@{tag}" if tag else str(batch_id)


def _batch_in_url() -> int | None:
    number, _, tag = st.query_params.get(QUERY_KEY, "").partition("@")
    return int(number) if number.isdigit() and tag == session.ledger_tag() else None


def opened_batch(services: Services) -> BatchRecord | None:
    """This session's batch, else the URL's, else the most recent one."""
    for batch_id in (_batch_in_url(), st.session_state.get(OPEN_KEY)):
        if batch_id is not None:
            batch = services.ledger.batch(batch_id)
            if batch is not None:
                open_batch(batch.id)
                return batch
    batch = batchprogress.latest_batch(services.ledger)
    if batch is not None:
        open_batch(batch.id)
    return batch


def state_badge(state: str) -> None:
    words, color, icon = STATE_BADGES[state]
    st.badge(words, color=color, icon=icon)  # type: ignore[arg-type]


def figures(progress: BatchProgress) -> None:
    """The progress bar and the counts, rate, ETA and credits."""
    counts = progress.counts
    st.progress(progress.fraction, text=f"{progress.finished:,} of {progress.total:,} done")
    with st.container(horizontal=True, key="batch-figures"):
        st.metric(JobState.COMPLETED.words, f"{counts[JobState.COMPLETED]:,}", border=True)
        st.metric(JobState.FAILED.words, f"{counts[JobState.FAILED]:,}", border=True)
        st.metric(JobState.UNCERTAIN.words, f"{counts[JobState.UNCERTAIN]:,}", border=True)
        st.metric("In progress", f"{progress.in_flight:,}", border=True)
        st.metric(JobState.QUEUED.words, f"{counts[JobState.QUEUED]:,}", border=True)
        rate = progress.rate_per_min
        st.metric("Rate", "—" if rate is None else f"{rate:,.1f}/min", border=True)
        eta = progress.eta_seconds
        st.metric("Time left", "—" if eta is None else duration_text(eta), border=True)
        st.metric("Credits spent", f"{progress.credits_spent:,}", border=True)


def _rows_in(rows: list[JobRecord], *states: JobState) -> list[JobRecord]:
    return [row for row in rows if row.state in states]


def controls(
    services: Services, batch: BatchRecord, rows: list[JobRecord], progress: BatchProgress
) -> None:
    """Pause/Resume, Cancel queued, Retry failed (uncertain rows: only those ticked)."""
    if batch.private:
        st.caption(
            "Started from the command line: that command runs it (`mirrago batch` "
            "again continues it; `mirrago batch --follow "
            f"{batch.id}` shows its progress)."
        )
        return
    queued = _rows_in(rows, JobState.QUEUED)
    failed = _rows_in(rows, JobState.FAILED)
    with st.container(horizontal=True, key="batch-controls"):
        if batch.paused:
            if st.button("Resume", icon=":material/play_arrow:", key="batch-resume"):
                services.ledger.set_batch_paused(batch.id, False)
                st.rerun(scope="app")
        elif st.button(
            "Pause",
            icon=":material/pause:",
            key="batch-pause",
            disabled=not progress.active,
            help="Stop sending new rows; the ones in progress finish.",
        ):
            services.ledger.set_batch_paused(batch.id, True)
            st.rerun(scope="app")
        if st.button(
            f"Cancel queued ({len(queued):,})",
            icon=":material/cancel:",
            key="batch-cancel",
            disabled=not queued,
        ):
            for row in queued:
                services.runner.cancel(row.id)
            st.rerun(scope="app")
        if st.button(
            f"Retry failed — {len(failed):,} credit{'s' * (len(failed) != 1)}",
            icon=":material/refresh:",
            key="batch-retry",
            disabled=not failed,
        ):
            for row in failed:
                services.runner.retry(row.id)
            st.rerun(scope="app")
    if batch.paused:
        st.info(
            f"Paused: no new rows are sent. {progress.in_flight} in progress finish.",
            icon=":material/pause:",
        )
    error = getattr(services.runner, "last_error", None)
    if error is not None and queued:
        st.warning(f"Rows are not being sent: {md_text(error)}", icon=":material/warning:")
    uncertain_panel(services, _rows_in(rows, JobState.UNCERTAIN))


def uncertain_panel(services: Services, uncertain: list[JobRecord]) -> None:
    if not uncertain:
        return
    with st.expander(
        f"{len(uncertain)} unconfirmed row{'s' * (len(uncertain) != 1)}", icon=":material/help:"
    ):
        st.caption(UNCERTAIN_MEANING)
        labels = {row.id: f"Row {row.row_index + 1}" for row in uncertain}
        ticked = st.pills(
            "Rows to retry",
            list(labels),
            selection_mode="multi",
            format_func=labels.__getitem__,
            key="batch-uncertain-pick",
        )
        if st.button(
            f"Retry {len(ticked)} ticked — {len(ticked)} credits",
            key="batch-uncertain-retry",
            disabled=not ticked,
            icon=":material/refresh:",
        ):
            for row_id in ticked:
                services.runner.retry(row_id)
            st.rerun(scope="app")


def header(batch: BatchRecord, progress: BatchProgress, owner: str | None = None) -> None:
    """The batch's name and state; `owner` (sign-in on) shows who started it, as text."""
    with st.container(horizontal=True, vertical_alignment="center", key="batch-header"):
        st.subheader(md_text(batch.name), anchor=False)
        state_badge(progress.state)
    by = f" · by {md_text(owner)}" if owner else ""
    st.caption(
        f"Batch {batch.id} · started {batch.created_at.astimezone():%d %b %Y %H:%M} · "
        f"{progress.total:,} rows{by}"
    )
