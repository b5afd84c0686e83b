"""The review's extras for the Batch page's gallery, which the page hands to `gallery(...)` and
`detail(...)`: `verdict_filter` (verdict and reason filters and a "to review" queue in the
filter bar), `card_verdict` (Pass / Fail-with-a-reason on each card) and `detail_verdict` (the
keyboard verdict bar in the detail dialog; after a verdict the dialog moves to the next
unreviewed result of the filtered list)."""

from __future__ import annotations

import streamlit as st

from mirrago import review
from mirrago.errors import MirragoError
from mirrago.ledger import JobRecord
from mirrago.services import Services
from mirrago.triage.ordering import most_suspect_first
from mirrago.ui.batch import gallery as batch_gallery
from mirrago.ui.batch.rows import review_ids, snapshot, wrote_row
from mirrago.ui.review.panel import (
    Given,
    conflict_text,
    keep_reviewer_in_address,
    review_controls,
    reviewer_name,
    state,
)

QUEUE_KEY = "batch-filter-queue"


def verdict_filter(rows: list[JobRecord], services: Services) -> list[JobRecord]:
    """The verdict and reason filters and the to-review queue (a `GalleryFilter`)."""
    labels = review.VERDICT_WORDS
    verdicts = st.pills(
        "Verdict",
        list(labels),
        selection_mode="multi",
        format_func=labels.__getitem__,
        key="batch-filter-verdict",
    )
    reasons = st.pills(
        "Reason",
        list(review.REASONS),
        selection_mode="multi",
        format_func=review.REASONS.__getitem__,
        key="batch-filter-reason",
    )
    queue = st.toggle(
        "To-review queue",
        key=QUEUE_KEY,
        help="Unreviewed finished results only, most suspect first (the quality checks' "
        "suspect score), then oldest first",
    )
    if verdicts or reasons:
        rows = [row for row in rows if review.matches(row, verdicts or [], reasons or [])]
    if queue and rows:
        waiting = review.review_queue(rows)
        rows = most_suspect_first(waiting, services.ledger.batch_triage(rows[0].batch_id))
    if rows:  # the verdict each card shows, for a card's Pass or Fail to name
        state().saw(rows, review_ids(services.ledger, rows[0].batch_id), one_on_screen=False)
    keep_reviewer_in_address()  # the cards' verdicts carry the name: a refresh keeps it
    return rows


def _quick(services: Services, row: JobRecord, verdict: str, reason: str | None) -> None:
    """A card's verdict, given on the review the card showed: when someone judged the row
    since, theirs stays and the reviewer is told; the same button again replaces it."""
    session = state()
    if row.id in session.seen:
        expected = session.seen[row.id]
    else:  # a card drawn before this session read the verdicts: the one it holds now
        expected = review_ids(services.ledger, row.batch_id).get(row.id)
    try:
        record = review.give_verdict(
            services.ledger,
            row,
            verdict,
            [reason] if reason else [],
            reviewer=reviewer_name(),
            expected_review_id=expected,
        )
    except review.ReviewConflict as conflict:
        session.seen[row.id] = conflict.theirs.id
        st.toast(
            f"{conflict_text(conflict.theirs, row.row_index + 1)}: yours was not saved. "
            "Give it again to replace theirs.",
            icon=":material/group:",
        )
        return
    except MirragoError as error:
        st.toast(str(error), icon=":material/error:")
        return
    session.seen[row.id] = record.id
    session.done.append(Given(row.id, record.id, record.reviewer))  # Undo takes it back too
    st.session_state[fail_menu_key(row.id)] = False  # the reason is given: close its menu
    wrote_row(services.ledger, row.id, reviews_added=1)


def fail_menu_key(row_id: int) -> str:
    """The key of a card's Fail menu (its open state in `st.session_state`)."""
    return f"batch-card-fail-{row_id}"


def card_verdict(services: Services, row: JobRecord) -> None:
    """Pass, or Fail with one reason picked in its menu (a fail always has a reason): a
    card's `RowExtra`."""
    if not review.reviewable(row):
        return
    with st.container(horizontal=True, gap="xsmall", key=f"batch-card-review-{row.id}"):
        st.button(
            "Pass",
            key=f"batch-card-pass-{row.id}",
            icon=":material/check:",
            type="tertiary",
            on_click=_quick,
            args=(services, row, review.PASS, None),
        )
        menu = fail_menu_key(row.id)
        # The reasons are drawn only while the menu is open: a page of 24 cards would
        # otherwise send 24 closed menus of seven widgets on every page change.
        with st.popover("Fail", icon=":material/close:", key=menu, on_change="rerun") as fail:
            if not fail.open:
                return
            st.caption("Why does it fail?")
            for reason, label in review.REASONS.items():
                st.button(
                    label,
                    key=f"{menu}-{reason}",
                    on_click=_quick,
                    args=(services, row, review.FAIL, reason),
                    width="stretch",
                )


def _show_in_dialog(row_id: int) -> None:
    ids = st.session_state.get(batch_gallery.DETAIL_IDS_KEY) or []
    if row_id in ids:
        st.session_state[batch_gallery.DETAIL_POS_KEY] = ids.index(row_id)


def detail_verdict(services: Services, row: JobRecord) -> None:
    """The verdict bar in the detail dialog, over the results the dialog steps through: the
    dialog's `RowExtra`."""
    ids = st.session_state.get(batch_gallery.DETAIL_IDS_KEY) or [row.id]
    by_id = snapshot(services.ledger, row.batch_id).by_id
    ordered = [by_id[row_id] for row_id in ids if row_id in by_id]
    with st.container(border=True, key="batch-detail-review"):
        review_controls(services.ledger, row, ordered, on_move=_show_in_dialog)
        left = sum(review.is_unreviewed(job) for job in ordered)
        st.caption(f"{left} of {len(ordered)} in this list still to review.")
    state().show(row.id)
