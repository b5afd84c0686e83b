"""The review loop on screen: Pass (`P`), Fail (`F`), reason tags on the number keys, a note,
Undo (`U`), Skip (`S`); after a verdict the view moves to the next unreviewed result of the
current filter. Plus the review filters and the summary figures.

Everything is saved in the ledger at once (`mirrago.review`); the session only remembers which
result is on screen, the reasons ticked for it, when it was shown and this session's verdicts
(for Undo). Buttons act in their callbacks, so the run that follows a keypress already shows
the next result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import streamlit as st

from mirrago import review
from mirrago.errors import MirragoError
from mirrago.ledger import JobRecord, Ledger, ReviewRecord
from mirrago.ui.plain import md_text

STATE_KEY = "review.state"
REVIEWER_KEY = "review-reviewer"
REASON_KEYS = {reason: str(number) for number, reason in enumerate(review.REASONS, start=1)}
VERDICT_BADGES = {
    review.PASS: ("Pass", "green", ":material/check:"),
    review.FAIL: ("Fail", "red", ":material/close:"),
}


@dataclass
class ReviewState:
    """What this browser session remembers about its review (everything else is the ledger's)."""

    current: int | None = None  # the row on screen
    shown_at: float = field(default_factory=time.monotonic)
    reasons: set[str] = field(default_factory=set)
    done: list[int] = field(default_factory=list)  # rows given a verdict here, for Undo
    message: str | None = None

    def show(self, row_id: int | None) -> None:
        if row_id != self.current:
            self.current = row_id
            self.shown_at = time.monotonic()
            self.reasons = set()


def state() -> ReviewState:
    found = st.session_state.get(STATE_KEY)
    if not isinstance(found, ReviewState):
        found = st.session_state[STATE_KEY] = ReviewState()
    return found


def reviewer_name() -> str | None:
    """The signed-in user's name, else the name typed in the review bar."""
    try:
        if st.user.is_logged_in:
            return str(st.user.get("name") or st.user.get("email") or "") or None
    except Exception:  # no auth configured: st.user has nothing to say
        pass
    return (st.session_state.get(REVIEWER_KEY) or "").strip() or None


def current_job(ordered: Sequence[JobRecord]) -> JobRecord | None:
    """The result on screen: the remembered one when it is in this view, else the first
    unreviewed one of it, else its first result."""
    session = state()
    by_id = {job.id: job for job in ordered}
    if session.current in by_id:
        return by_id[session.current]
    job = review.next_unreviewed(ordered, None) or (ordered[0] if ordered else None)
    session.show(job.id if job else None)
    return job


# --------------------------------------------------------------------------- actions

Mover = Callable[[int], None]  # shows another row (the page's own way, e.g. the detail dialog)


def _move(row_id: int | None, on_move: Mover | None) -> None:
    state().show(row_id)
    if on_move is not None and row_id is not None:
        on_move(row_id)


def _fresh(ledger: Ledger, ordered_ids: list[int], batch_id: int) -> list[JobRecord]:
    """The view's rows as the ledger has them now, in the view's order."""
    by_id = {job.id: job for job in ledger.jobs(batch_id=batch_id)}
    return [by_id[row_id] for row_id in ordered_ids if row_id in by_id]


def _on_screen(rows: list[JobRecord]) -> JobRecord | None:
    """The row the session shows now. Callbacks act on it, not on the row their button was
    drawn for: keys pressed faster than the page redraws apply to the rows in turn (a second
    key must never land on the row the first one already judged)."""
    current = state().current
    return next((row for row in rows if row.id == current), None)


def _verdict(
    ledger: Ledger, ordered_ids: list[int], batch_id: int, verdict: str, on_move: Mover | None
) -> None:
    session = state()
    rows = _fresh(ledger, ordered_ids, batch_id)
    job = _on_screen(rows)
    if job is None:
        return
    note = st.session_state.get(f"review-note-{job.id}")
    try:
        review.give_verdict(
            ledger,
            job,
            verdict,
            sorted(session.reasons),
            note,
            reviewer=reviewer_name(),
            seconds=time.monotonic() - session.shown_at,
        )
    except MirragoError as error:
        session.message = str(error)
        return
    session.message = None
    session.done.append(job.id)
    fresh = [ledger.job(job.id) or job if row.id == job.id else row for row in rows]
    following = review.next_unreviewed(fresh, job.id)
    _move(following.id if following else job.id, on_move)


def _toggle_reason(reason: str) -> None:
    session = state()
    session.reasons ^= {reason}
    session.message = None


def _skip(ledger: Ledger, ordered_ids: list[int], batch_id: int, on_move: Mover | None) -> None:
    session = state()
    session.message = None
    rows = _fresh(ledger, ordered_ids, batch_id)
    job = _on_screen(rows)
    if job is None:
        return
    following = review.next_unreviewed(rows, job.id)
    if following is None:  # nothing unreviewed left: step to the next result instead
        index = next((i for i, row in enumerate(rows) if row.id == job.id), -1)
        following = rows[(index + 1) % len(rows)] if rows else None
    _move(following.id if following else None, on_move)


def _undo(ledger: Ledger, on_move: Mover | None) -> None:
    session = state()
    session.message = None
    while session.done:
        row_id = session.done.pop()
        undone = ledger.undo_review(row_id)
        if undone is not None:
            _move(row_id, on_move)
            session.reasons = set(undone.reasons)
            return
    session.message = "Nothing to undo: no verdict was given in this session yet."


def _rerun(ledger: Ledger, job: JobRecord) -> None:
    session = state()
    if ledger.retry(job.id, rerun_completed=True):
        session.message = None
        st.toast(f"Row {job.row_index + 1} is queued again as attempt {job.attempts + 1}.")
    else:
        session.message = "This row cannot be run again now: it is no longer a finished result."


# --------------------------------------------------------------------------- widgets


def verdict_badge(job: JobRecord) -> None:
    if job.review_verdict in VERDICT_BADGES:
        words, colour, icon = VERDICT_BADGES[job.review_verdict]
        st.badge(words, color=colour, icon=icon)  # type: ignore[arg-type]
    elif review.reviewable(job):
        st.badge("To review", color="gray", icon=":material/rate_review:")


def review_controls(
    ledger: Ledger,
    job: JobRecord,
    ordered: Sequence[JobRecord],
    on_move: Mover | None = None,
) -> None:
    """The verdict bar for `job`, the result on screen among `ordered` (the current filter).
    After a verdict, Skip or Undo, `on_move(row_id)` is called with the row to show next."""
    ordered_ids = [row.id for row in ordered]
    session = state()
    session.show(job.id)  # a row shown by other means (the dialog's Next) starts its clock
    if not review.reviewable(job):
        st.caption("Only a finished result can be reviewed.")
        return
    if job.review_verdict in review.VERDICTS:
        reasons = ", ".join(review.REASONS.get(tag, tag) for tag in job.review_tags)
        reasons = f" ({md_text(reasons)})" if reasons else ""
        st.caption(f"Current verdict: {job.review_verdict}{reasons}")
    st.caption("Reasons for a fail: press their number keys, then F.")
    with st.container(horizontal=True, gap="small", key="review-reasons"):
        for reason, label in review.REASONS.items():
            st.button(
                label,
                key=f"review-reason-{reason}",
                type="primary" if reason in session.reasons else "secondary",
                shortcut=REASON_KEYS[reason],
                on_click=_toggle_reason,
                args=(reason,),
            )
    st.text_input(
        "Note (optional)",
        key=f"review-note-{job.id}",
        value=job.review_note or "",
        placeholder="What is wrong, where",
    )
    with st.container(horizontal=True, gap="small", key="review-verdicts"):
        st.button(
            "Pass",
            key="review-pass",
            icon=":material/check:",
            shortcut="P",
            on_click=_verdict,
            args=(ledger, ordered_ids, job.batch_id, review.PASS, on_move),
        )
        st.button(
            "Fail",
            key="review-fail",
            icon=":material/close:",
            shortcut="F",
            on_click=_verdict,
            args=(ledger, ordered_ids, job.batch_id, review.FAIL, on_move),
            help="A fail needs at least one reason (keys 1–6)",
        )
        st.button(
            "Skip",
            key="review-skip",
            shortcut="S",
            on_click=_skip,
            args=(ledger, ordered_ids, job.batch_id, on_move),
        )
        st.button(
            "Undo",
            key="review-undo",
            icon=":material/undo:",
            shortcut="U",
            on_click=_undo,
            args=(ledger, on_move),
            disabled=not session.done,
        )
        if job.review_verdict == review.FAIL:
            st.button(
                "Run again",
                key="review-rerun",
                icon=":material/replay:",
                on_click=_rerun,
                args=(ledger, job),
                help="Queue this pair again as a new attempt (it spends a credit). The verdict "
                "stays in the history; the new result asks for a new one.",
            )
    if session.message:
        st.error(session.message, icon=":material/error:")
    elif not session.reasons:
        st.caption("Fail needs a reason first: pick one with keys 1–6.")


def review_filters(key: str = "review-filter") -> tuple[list[str], list[str]]:
    """Verdict and reason filters; returns (verdicts, reasons) for `review.matches`."""
    verdict_labels = {"unreviewed": "To review", review.PASS: "Pass", review.FAIL: "Fail"}
    with st.container(horizontal=True, gap="medium", key=f"{key}-bar"):
        verdicts = st.pills(
            "Verdict",
            list(verdict_labels),
            selection_mode="multi",
            format_func=verdict_labels.__getitem__,
            key=f"{key}-verdict",
        )
        reasons = st.pills(
            "Reason",
            list(review.REASONS),
            selection_mode="multi",
            format_func=review.REASONS.__getitem__,
            key=f"{key}-reason",
        )
    return list(verdicts or []), list(reasons or [])


def review_summary(jobs: Sequence[JobRecord], history: Sequence[ReviewRecord]) -> None:
    """Reviewed n of m, pass rate, median time, counts per reason, the worst inputs."""
    summary = review.summarize(jobs, history)
    median = "–" if summary.median_seconds is None else f"{summary.median_seconds:.1f} s"
    with st.container(horizontal=True, gap="medium", key="review-summary"):
        st.metric("Reviewed", f"{summary.reviewed} of {summary.reviewable}", border=True)
        st.metric("Pass rate", review.percent(summary.pass_rate), border=True)
        st.metric("Failed", summary.failed, border=True)
        st.metric("Median time per review", median, border=True)
    if not summary.failed:
        return
    left, middle, right = st.columns(3)
    with left:
        st.caption("Fails by reason")
        for reason, count in summary.reasons.items():
            if count:
                st.text(f"{review.REASONS[reason]}: {count}")
    for column, title, rates in (
        (middle, "Worst garments", summary.worst_garments),
        (right, "Worst persons", summary.worst_persons),
    ):
        with column:
            st.caption(title)
            for rate in rates:
                st.text(
                    f"{review.input_label(rate.value)}: {review.percent(rate.rate)} "
                    f"({rate.passed}/{rate.reviewed})"
                )
