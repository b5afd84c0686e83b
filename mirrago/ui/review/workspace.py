"""The review section of a batch: who reviews, the Export menu, the summary figures, and three
views: Review (one result at a time, keyboard first), Matrix and Compare. One call from a page:
`review_workspace(ledger, batch_id)`.

The Review view and the summary under it are one fragment: a verdict, Skip, Undo or a reason
key reruns them alone, not the page, on the batch's rows as read once per change of the batch
(`mirrago.ui.batch.rows`); the next results' pictures are already in the browser by then."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from mirrago import review, samples
from mirrago.ledger import JobRecord, Ledger
from mirrago.triage.ordering import most_suspect_first
from mirrago.ui.batch.rows import batch_rows, review_history
from mirrago.ui.plain import md_text
from mirrago.ui.review.compare import compare_view
from mirrago.ui.review.export import export_menu
from mirrago.ui.review.matrix import matrix_view
from mirrago.ui.review.panel import (
    current_job,
    review_controls,
    review_filters,
    review_summary,
    reviewer_field,
    reviewer_name,
    state,
    verdict_badge,
)

VIEW_KEY = "review-view"
INPUT_WIDTH = 140  # px: the person and garment beside the verdict bar
PRELOAD = 2  # results whose pictures the browser loads ahead of the keys that show them
# The preloaded pictures are drawn but never shown: the browser fetches them all the same.
_HIDE_PRELOAD = "<style>.st-key-review-preload { display: none; }</style>"
QUEUE_KEY = "review-queue"
VIEWS = {"review": "Review", "matrix": "Matrix", "compare": "Compare runs"}
VIEW_ICONS = {
    "review": ":material/rate_review:",
    "matrix": ":material/grid_on:",
    "compare": ":material/compare:",
}


def open_in_review(row_id: int) -> None:
    """Show `row_id` in the Review view (a matrix cell's click)."""
    state().show(row_id)
    st.session_state[VIEW_KEY] = "review"
    st.session_state[QUEUE_KEY] = False


def review_workspace(ledger: Ledger, batch_id: int) -> None:
    """The item under review comes first (above the fold on a laptop, first on a phone); the
    summary figures, fails by reason and the worst inputs follow it."""
    batch = ledger.batch(batch_id)
    jobs = batch_rows(ledger, batch_id)
    with st.container(horizontal=True, vertical_alignment="bottom", key="review-bar"):
        if batch is not None:
            made = batch.created_at.strftime("%Y-%m-%d %H:%M UTC")
            st.markdown(
                f"**Review: {md_text(batch.name)}**  \n"
                f":small[:gray[Batch {batch.id} · {len(jobs)} rows · {made}]]",
                width="content",
            )
        reviewer_field()  # then Export: side by side on a phone too
        export_menu(ledger, batch_id, reviewer=reviewer_name())
        view = st.segmented_control(
            "View",
            list(VIEWS),
            default="review",
            required=True,
            format_func=lambda v: f"{VIEW_ICONS[v]} {VIEWS[v]}",
            key=VIEW_KEY,
            label_visibility="collapsed",
        )
    if view == "matrix":
        matrix_view(jobs, open_in_review)
    elif view == "compare":
        compare_view(ledger, batch_id)
    else:
        _review_panel(ledger, batch_id)
        return
    st.divider()
    review_summary(jobs, review_history(ledger, batch_id))


@st.fragment
def _review_panel(ledger: Ledger, batch_id: int) -> None:
    """The Review view and the summary: what a key press changes, rerun alone."""
    jobs = batch_rows(ledger, batch_id)
    review_view(ledger, jobs)
    st.divider()
    review_summary(jobs, review_history(ledger, batch_id))


def _filters() -> tuple[list[str], list[str], bool]:
    """The verdict and reason filters and the queue, folded into one menu: (verdicts,
    reasons, queue)."""
    chosen = len(st.session_state.get("review-filter-verdict") or []) + len(
        st.session_state.get("review-filter-reason") or []
    )
    chosen += bool(st.session_state.get(QUEUE_KEY))
    label = f"Filter ({chosen})" if chosen else "Filter"
    with st.popover(label, icon=":material/filter_list:", key="review-filter-menu"):
        verdicts, reasons = review_filters()
        queue = st.toggle(
            "To-review queue (unreviewed only, most suspect first)", key=QUEUE_KEY, value=False
        )
    return verdicts, reasons, queue


def review_view(ledger: Ledger, jobs: list[JobRecord]) -> None:
    """The result on screen with its verdict bar beside it, its inputs under the bar."""
    with st.container(horizontal=True, vertical_alignment="center", key="review-top"):
        title = st.container(
            horizontal=True, vertical_alignment="center", key="review-title", width="content"
        )
        verdicts, reasons, queue = _filters()
    ordered = [
        job for job in jobs if review.reviewable(job) and review.matches(job, verdicts, reasons)
    ]
    if queue and ordered:  # the quality checks' suspect score first, then the oldest first
        waiting = review.review_queue(ordered)
        ordered = most_suspect_first(waiting, ledger.batch_triage(ordered[0].batch_id))
    if not ordered:
        st.info("No finished result matches these filters.")
        return
    job = current_job(ordered)
    if job is None:
        return
    position = next(i for i, row in enumerate(ordered) if row.id == job.id) + 1
    with title:
        st.markdown(f"**Row {job.row_index + 1}** · {position} of {len(ordered)}")
        verdict_badge(job)
    left, right = st.columns([1, 2], gap="medium")
    with left:
        _result(job)
    with right:
        review_controls(ledger, job, ordered)
        waiting = sum(review.is_unreviewed(row) for row in ordered)
        st.caption(
            f"{waiting} of {len(ordered)} results in this view still to review."
            if waiting
            else "Every result in this view is reviewed."
        )
        _inputs(job)
    _preload(_coming(ordered, job))


def _coming(ordered: list[JobRecord], job: JobRecord) -> list[JobRecord]:
    """The results the next keys show: the next unreviewed ones (a verdict), else the next
    ones in order (Skip at the end of the queue)."""
    coming: list[JobRecord] = []
    after = job.id
    while len(coming) < PRELOAD:
        following = review.next_unreviewed(ordered, after)
        if following is None or following.id == job.id or following in coming:
            break
        coming.append(following)
        after = following.id
    index = next(i for i, row in enumerate(ordered) if row.id == job.id)
    for row in ordered[index + 1 : index + 1 + PRELOAD]:
        if len(coming) < PRELOAD and row not in coming:
            coming.append(row)
    return coming


def _preload(coming: list[JobRecord]) -> None:
    """Draw the coming results' pictures hidden, as `_result` will draw them: the same URL,
    already in the browser when a key shows one."""
    with st.container(key="review-preload"):
        st.html(_HIDE_PRELOAD)
        for job in coming:
            if job.result_path and Path(job.result_path).is_file():
                st.image(job.result_path, width="stretch")


def _result(job: JobRecord) -> None:
    with st.container(key="review-result"):
        if job.result_path and Path(job.result_path).is_file():
            st.image(job.result_path, width="stretch", caption="Result")
        else:
            st.caption("The result file is missing from the data dir.")


def _inputs(job: JobRecord) -> None:
    st.caption(
        f"{md_text(review.input_label(job.target))} × {md_text(review.input_label(job.garment))}"
    )
    with st.container(horizontal=True, gap="small", key="review-inputs"):
        for value, role in ((job.target, "Person"), (job.garment, "Garment")):
            _input_image(value, role)


def _input_image(value: str, role: str) -> None:
    sample = samples.lookup(value)
    local = sample.path if sample else None
    if local is None and "://" not in value and Path(value).is_file():
        local = Path(value)
    if local is not None:
        st.image(str(local), width=INPUT_WIDTH, caption=role)
    elif value.startswith(("http://", "https://")):
        # Never handed to the browser: every reviewer's browser would fetch the link's host.
        st.caption(f"{role}: a link, not loaded here")
    else:
        st.caption(f"{role}: not available")
