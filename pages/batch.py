"""The Batch page: a table of pairs in, a live result gallery out.

UI only. Running a batch enqueues it with the runner (the same engine as `mirrago batch`);
everything shown afterwards is read back from the ledger, so a refresh, another tab or another
browser shows the same batch. `/batch` opens the most recent batch, `/batch?batch=<id>` any one.
"""

from __future__ import annotations

import streamlit as st

from mirrago import batchprogress
from mirrago.ledger import ACTIVE_STATES, BatchRecord
from mirrago.services import Services
from mirrago.ui import identity, session
from mirrago.ui.batch.gallery import detail, gallery
from mirrago.ui.batch.history import history
from mirrago.ui.batch.input import input_section
from mirrago.ui.batch.rows import batch_rows
from mirrago.ui.batch.run import controls, figures, header, open_batch, opened_batch
from mirrago.ui.review.gallery_extras import card_verdict, detail_verdict, verdict_filter
from mirrago.ui.review.workspace import review_workspace
from mirrago.ui.routing import ensure_routed
from mirrago.ui.stage.add import card_add_to_deck, detail_add_to_deck
from mirrago.ui.triage.agreement import agreement_section
from mirrago.ui.triage.findings import (
    SORT_LABEL,
    card_note,
    checks_pending,
    detail_findings,
    flag_filter,
    rescore_offer,
    suspect_sort,
)

ensure_routed()

VIEW_KEY = "batch-view"
VIEWS = {
    "new": ":material/table_rows: New batch",
    "results": ":material/photo_library: Results",
    "review": ":material/rate_review: Review & reports",
    "history": ":material/history: Past batches",
}
# What other features add to the gallery: the review's verdict filters, Pass/Fail on each card
# and the verdict bar in the detail dialog; the quality checks' flag filter, their sort, their
# chips on each card and their findings in the detail dialog; Stage's "Add to deck" on both.
GALLERY_FILTERS = (verdict_filter, flag_filter)
GALLERY_SORTS = {SORT_LABEL: suspect_sort}
CARD_NOTES = (card_note,)
CARD_EXTRAS = (card_verdict, card_add_to_deck)
DETAIL_EXTRAS = (detail_verdict, detail_findings, detail_add_to_deck)
LIVE_REFRESH = 1.5  # seconds between looks at the ledger while a batch is active
TO_TOP_KEY = "batch-to-top"
# Streamlit keeps the main area's scroll position across views: after Run (clicked at the
# bottom of a long table) the Results would open mid-gallery, the progress out of sight.
_SCROLL_TO_TOP = """<script>
const main = document.querySelector('[data-testid="stMain"]');
if (main) { main.scrollTo({top: 0}); requestAnimationFrame(() => main.scrollTo({top: 0})); }
</script>"""


def _show(batch_id: int) -> None:
    """Open a batch in the Results view, at its top (after Run, or from Past batches)."""
    open_batch(batch_id)
    st.session_state[VIEW_KEY] = "results"
    st.session_state[TO_TOP_KEY] = True


def _results(services: Services, batch: BatchRecord) -> None:
    slot = st.empty()  # on every run, so the elements below keep their places
    if st.session_state.pop(TO_TOP_KEY, False):
        slot.html(_SCROLL_TO_TOP, unsafe_allow_javascript=True)  # our own script, no user text
    active = sum(services.ledger.counts(batch.id)[s] for s in ACTIVE_STATES) > 0
    was_active_key = f"batch-was-active-{batch.id}"
    st.session_state[was_active_key] = active
    # After the last job, the quality checks run: keep looking until their chips are in.
    checking_key = f"batch-checking-{batch.id}"
    checking = not active and checks_pending(services, batch.id)
    st.session_state[checking_key] = checking

    @st.fragment(run_every=LIVE_REFRESH if active or checking else None)
    def live() -> None:
        current = services.ledger.batch(batch.id)
        if current is None:  # deleted meanwhile (another tab)
            st.rerun(scope="app")
        rows = batch_rows(services.ledger, batch.id)  # read again only when the batch changed
        progress = batchprogress.progress(current, rows)
        shared = identity.sign_in_configured()  # batches are the team's: say whose it is
        header(current, progress, batchprogress.batch_owner(rows) if shared else None)
        figures(progress)
        controls(services, current, rows, progress)
        if not progress.active:
            rescore_offer(services, current.id)
        st.divider()
        gallery(
            services,
            batch.id,
            filters=GALLERY_FILTERS,
            card_extras=CARD_EXTRAS,
            card_notes=CARD_NOTES,
            sorts=GALLERY_SORTS,
        )
        if st.session_state.get(was_active_key) and not progress.active:
            st.rerun(scope="app")  # finished: one full run, then the page stops ticking
        if st.session_state.get(checking_key) and not checks_pending(services, batch.id):
            st.rerun(scope="app")  # every result checked: stop ticking

    live()
    detail(services, detail_extras=DETAIL_EXTRAS)


services = session.current_services()

st.title("Batch")
st.caption(
    "Many pairs at once: fill the table (type, paste, import or combine), check it, run "
    "it, and watch the results arrive. Nothing is spent on rows that fail the checks."
)

batch = opened_batch(services)
if st.session_state.get(VIEW_KEY) not in VIEWS:
    st.session_state[VIEW_KEY] = "results" if batch is not None else "new"
view = st.segmented_control(
    "View",
    list(VIEWS),
    format_func=VIEWS.__getitem__,
    required=True,
    key=VIEW_KEY,
    label_visibility="collapsed",
)

if view == "new":
    input_section(services, _show)
elif view == "history":
    history(services, _show)
elif batch is None:
    st.info("No batch yet: add rows under New batch and run them.", icon=":material/info:")
elif view == "review":
    review_workspace(services.ledger, batch.id)
    agreement_section(services.ledger, batch.id)
else:
    _results(services, batch)
