"""The review loop on screen: Pass (`P`), Fail (`F`), reason tags on the number keys, a note,
Undo (`U`), Skip (`S`), Keep theirs (`K`) / Replace with mine (`M`) after a conflict; after a
verdict the view moves to the next unreviewed result of the current filter. Plus the review
filters and the summary figures.

Everything is saved in the ledger at once (`mirrago.review`); the session only remembers which
result is on screen, the reasons ticked for it, when it was shown, the verdict each row held
when the view was drawn and this session's verdicts (for Undo). Buttons act in their callbacks,
so the run that follows a keypress already shows the next result.

Several reviewers may share a batch: a verdict given on a row someone judged after the view was
drawn is not saved; the reviewer sees who judged it and chooses (keep theirs, replace with
mine). Undo takes back only this session's own verdicts. The reviewer's name is kept in the
address (`?reviewer=`), so a refresh keeps it; with sign-in it is the signed-in user's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import streamlit as st

from mirrago import review
from mirrago.errors import MirragoError
from mirrago.ledger import JobRecord, Ledger, ReviewRecord
from mirrago.ui import identity
from mirrago.ui.batch.rows import review_ids, snapshot, wrote_row
from mirrago.ui.plain import md_text

STATE_KEY = "review.state"
REVIEWER_KEY = "reviewer"  # also the query parameter that keeps the name across a refresh
NAME_CHARS = 80  # a reviewer's name on record, at most
REASON_KEYS = {reason: str(number) for number, reason in enumerate(review.REASONS, start=1)}


@dataclass(frozen=True)
class Given:
    """A verdict this session gave (what Undo may take back)."""

    row_id: int
    review_id: int
    reviewer: str | None


@dataclass(frozen=True)
class Pending:
    """A verdict not saved because someone judged the row after the view was drawn: theirs
    stays until the reviewer chooses."""

    row_id: int
    row_number: int
    verdict: str
    reasons: tuple[str, ...]
    note: str | None
    seconds: float | None
    theirs: ReviewRecord


@dataclass
class ReviewState:
    """What this browser session remembers about its review (everything else is the ledger's)."""

    current: int | None = None  # the row on screen
    shown_at: float = field(default_factory=time.monotonic)
    reasons: set[str] = field(default_factory=set)
    done: list[Given] = field(default_factory=list)  # verdicts given here, for Undo
    message: str | None = None
    # Row id → the review it held when the view was drawn (None: unreviewed); a verdict names
    # it, so one given on a stale view is refused rather than overwriting someone's.
    seen: dict[int, int | None] = field(default_factory=dict)
    pinned: int | None = None  # the row on screen whose `seen` is kept from its first draw
    conflict: Pending | None = None

    def show(self, row_id: int | None) -> None:
        if row_id != self.current:
            self.current = row_id
            self.shown_at = time.monotonic()
            self.reasons = set()
            self.conflict = None

    def saw(
        self, rows: Sequence[JobRecord], review_ids: dict[int, int], *, one_on_screen: bool = True
    ) -> None:
        """Remember the verdict each row of the view held when it was drawn. With
        `one_on_screen` (the Review view, the detail dialog) the result on screen keeps the one
        it held when it came on screen: a verdict someone gave while the reviewer looked at it
        (a redraw for a reason key changes only a small badge) must still be put to the
        reviewer, not replaced unseen. Cards show their verdict each: all are read afresh."""
        for row in rows:
            if one_on_screen and row.id == self.current == self.pinned and row.id in self.seen:
                continue
            self.seen[row.id] = review_ids.get(row.id)
        if one_on_screen:
            self.pinned = self.current


def state() -> ReviewState:
    found = st.session_state.get(STATE_KEY)
    if not isinstance(found, ReviewState):
        found = st.session_state[STATE_KEY] = ReviewState()
    return found


def signed_in_name() -> str | None:
    """With sign-in, the signed-in user's name (else email): the reviewer, not editable."""
    if not identity.sign_in_configured():
        return None
    try:
        if not st.user.is_logged_in:
            return None
        name = st.user.get("name") or st.user.get("email") or identity.current_owner()
    except Exception:  # an auth section that does not work: no signed-in user to name
        return None
    return str(name or "").strip()[:NAME_CHARS] or None


def reviewer_name() -> str | None:
    """The signed-in user's name, else the name typed in the review bar (kept in the address:
    the Results view's cards, where the bar is not drawn, and a refresh read it there)."""
    signed_in = signed_in_name()
    if signed_in:
        return signed_in
    typed = st.session_state.get(REVIEWER_KEY)
    if typed is None:
        typed = st.query_params.get(REVIEWER_KEY)
    return (typed or "").strip()[:NAME_CHARS] or None


def keep_reviewer_in_address() -> None:
    """Write the typed name into the address (`?reviewer=`), where a refresh finds it; an
    emptied field takes it out."""
    if signed_in_name():
        return
    name = reviewer_name()
    if name and st.query_params.get(REVIEWER_KEY) != name:
        st.query_params[REVIEWER_KEY] = name
    elif not name and REVIEWER_KEY in st.query_params:
        del st.query_params[REVIEWER_KEY]


def reviewer_field() -> None:
    """Who reviews: the signed-in user (shown, not editable), else a name kept in the address
    so that a refresh keeps it."""
    signed_in = signed_in_name()
    if signed_in:
        st.text_input(
            "Reviewer",
            value=signed_in,
            disabled=True,
            width=200,
            key="reviewer-signed-in",
            help="You are signed in: verdicts carry your name",
        )
        return
    if REVIEWER_KEY not in st.session_state:  # a new session (a refresh): the address's name
        st.session_state[REVIEWER_KEY] = st.query_params.get(REVIEWER_KEY, "")[:NAME_CHARS]
    st.text_input(
        "Reviewer",
        key=REVIEWER_KEY,
        placeholder="Your name, for the record",
        max_chars=NAME_CHARS,
        width=200,
        on_change=keep_reviewer_in_address,
        persist_state="session",  # kept while the field is not drawn (another view, page)
        help="Saved with every verdict you give; kept in this page's address",
    )
    keep_reviewer_in_address()  # back in the address after a page switch dropped it


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
    by_id = snapshot(ledger, batch_id).by_id
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
    reasons = tuple(sorted(session.reasons))
    seconds = time.monotonic() - session.shown_at
    _save(ledger, rows, job, verdict, reasons, note, seconds, session.seen.get(job.id), on_move)


def _save(
    ledger: Ledger,
    rows: list[JobRecord],
    job: JobRecord,
    verdict: str,
    reasons: Sequence[str],
    note: str | None,
    seconds: float | None,
    expected: int | None,
    on_move: Mover | None,
) -> None:
    """Record the verdict on `job` if it still holds the review `expected`; on a conflict keep
    the verdict pending for the reviewer's choice. Then move to the next unreviewed result."""
    session = state()
    try:
        record = review.give_verdict(
            ledger,
            job,
            verdict,
            reasons,
            note,
            reviewer=reviewer_name(),
            seconds=seconds,
            expected_review_id=expected,
        )
    except review.ReviewConflict as conflict:
        session.message = None
        session.conflict = Pending(
            job.id, job.row_index + 1, verdict, tuple(reasons), note, seconds, conflict.theirs
        )
        session.seen[job.id] = conflict.theirs.id  # seen now: a verdict given again replaces it
        return
    except MirragoError as error:
        session.message = str(error)
        return
    session.message = None
    session.conflict = None
    session.seen[job.id] = record.id
    session.done.append(Given(job.id, record.id, record.reviewer))
    wrote_row(ledger, job.id, reviews_added=1)
    fresh = [ledger.job(job.id) or job if row.id == job.id else row for row in rows]
    following = review.next_unreviewed(fresh, job.id)
    _move(following.id if following else job.id, on_move)


def _replace(ledger: Ledger, ordered_ids: list[int], batch_id: int, on_move: Mover | None) -> None:
    """Replace with mine: the pending verdict, over the one the reviewer has now seen."""
    session = state()
    pending = session.conflict
    rows = _fresh(ledger, ordered_ids, batch_id)
    job = next((row for row in rows if pending and row.id == pending.row_id), None)
    if pending is None or job is None:
        session.conflict = None
        return
    _save(
        ledger,
        rows,
        job,
        pending.verdict,
        pending.reasons,
        pending.note,
        pending.seconds,
        pending.theirs.id,
        on_move,
    )


def _keep_theirs(
    ledger: Ledger, ordered_ids: list[int], batch_id: int, on_move: Mover | None
) -> None:
    """Keep theirs: drop the pending verdict and go on to the next unreviewed result."""
    session = state()
    pending, session.conflict = session.conflict, None
    if pending is None:
        return
    session.seen[pending.row_id] = pending.theirs.id
    rows = _fresh(ledger, ordered_ids, batch_id)
    following = review.next_unreviewed(rows, pending.row_id)
    _move(following.id if following else pending.row_id, on_move)


def conflict_text(theirs: ReviewRecord, row_number: int) -> str:
    """Who judged the row since the view was drawn, what and when (Markdown-safe)."""
    who = md_text((theirs.reviewer or "Someone without a name")[:40])
    words = theirs.verdict.capitalize()
    if theirs.reasons:
        words += " (" + ", ".join(review.REASONS.get(r, r) for r in theirs.reasons) + ")"
    return f"{who} judged row {row_number} {md_text(words)} at {theirs.at:%H:%M:%S} UTC"


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
    """Take back this session's last verdict, unless someone judged that row since: theirs
    stays, and the reviewer is told whose it is."""
    session = state()
    session.message = None
    session.conflict = None
    while session.done:
        given = session.done.pop()
        try:
            undone = ledger.undo_review(
                given.row_id, reviewer=given.reviewer, review_id=given.review_id
            )
        except review.ReviewConflict as conflict:
            job = ledger.job(given.row_id)
            number = job.row_index + 1 if job else 0
            session.message = (
                f"Undo takes back only your own verdicts: {conflict_text(conflict.theirs, number)}"
                ", after yours, and that verdict stays. Judge the row again to change it."
            )
            session.seen[given.row_id] = conflict.theirs.id
            _move(given.row_id, on_move)
            return
        if undone is not None:
            wrote_row(ledger, given.row_id, reviews_added=0)
            _move(given.row_id, on_move)
            session.reasons = set(undone.reasons)
            session.seen.pop(given.row_id, None)  # the next draw reads it afresh
            return
    session.message = "Nothing to undo: no verdict was given in this session yet."


def _rerun(ledger: Ledger, job: JobRecord) -> None:
    session = state()
    if ledger.retry(job.id, rerun_completed=True):
        wrote_row(ledger, job.id, reviews_added=0)
        session.message = None
        st.toast(f"Row {job.row_index + 1} is queued again as attempt {job.attempts + 1}.")
    else:
        session.message = "This row cannot be run again now: it is no longer a finished result."


# --------------------------------------------------------------------------- widgets


def verdict_badge(job: JobRecord, *, to_review: bool = True) -> None:
    """The one badge of a result's verdict ("Pass", "Fail"); "To review" for a result still
    waiting for one, unless `to_review` is False (the gallery's cards)."""
    if job.review_verdict in review.VERDICT_BADGES:
        words, colour, icon = review.VERDICT_BADGES[job.review_verdict]
        st.badge(words, color=colour, icon=icon)  # type: ignore[arg-type]
    elif to_review and review.reviewable(job):
        st.badge("To review", color="gray", icon=":material/rate_review:")


def verdict_badge_md(job: JobRecord) -> str:
    """A result's verdict badge as Markdown ("" without one), to share one element with other
    text (a gallery card)."""
    if job.review_verdict not in review.VERDICT_BADGES:
        return ""
    words, colour, icon = review.VERDICT_BADGES[job.review_verdict]
    return f":{colour}-badge[{icon} {words}]"


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
    session.saw(ordered, review_ids(ledger, job.batch_id))
    if not review.reviewable(job):
        st.caption("Only a finished result can be reviewed.")
        return
    if job.review_verdict in review.VERDICTS:
        reasons = ", ".join(review.REASONS.get(tag, tag) for tag in job.review_tags)
        reasons = f" ({md_text(reasons)})" if reasons else ""
        words = review.VERDICT_BADGES[job.review_verdict][0]
        st.caption(f"Current verdict: {words}{reasons}")
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
    if session.conflict is not None and session.conflict.row_id == job.id:
        _conflict_choice(session.conflict, (ledger, ordered_ids, job.batch_id, on_move))
    elif session.message:
        st.error(session.message, icon=":material/error:")
    elif not session.reasons:
        st.caption("Fail needs a reason first: pick one with keys 1–6.")


def _conflict_choice(pending: Pending, args: tuple) -> None:
    """Someone judged the row after the view was drawn: say who, what and when; keep theirs
    or replace it with the verdict just given."""
    mine = pending.verdict.capitalize()
    st.warning(
        f"{conflict_text(pending.theirs, pending.row_number)}, after this page showed it. "
        f"Your {mine} was not saved: keep their verdict, or replace it with yours.",
        icon=":material/group:",
    )
    with st.container(horizontal=True, gap="small", key="review-conflict"):
        st.button(
            "Keep theirs",
            key="review-keep-theirs",
            icon=":material/done:",
            shortcut="K",
            on_click=_keep_theirs,
            args=args,
        )
        st.button(
            f"Replace with mine ({mine})",
            key="review-replace",
            type="primary",
            icon=":material/swap_horiz:",
            shortcut="M",
            on_click=_replace,
            args=args,
        )


def review_filters(key: str = "review-filter") -> tuple[list[str], list[str]]:
    """Verdict and reason filters; returns (verdicts, reasons) for `review.matches`."""
    verdict_labels = review.VERDICT_WORDS
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
    """Reviewed n of m, review pass, median time, counts per reason, the worst inputs."""
    summary = review.summarize(jobs, history)
    median = "–" if summary.median_seconds is None else f"{summary.median_seconds:.1f} s"
    with st.container(horizontal=True, gap="medium", key="review-summary"):
        st.metric("Reviewed", f"{summary.reviewed} of {summary.reviewable}", border=True)
        st.metric(
            "Review pass",
            review.percent(summary.pass_rate),
            border=True,
            help="Reviewed results given Pass",
        )
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
