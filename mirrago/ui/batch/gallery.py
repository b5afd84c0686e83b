"""The Batch page's result gallery: filters, a paged grid of result cards (thumbnails only) and
the detail dialog (full-size result, before/after, inputs, metadata, download; Previous/Next
through the filtered results without closing it).

Other features add to it through parameters, never by changing this module's state: `filters`
(drawn in the filter bar, each narrowing the rows), `sorts` (more orders beside Row and
Newest), `card_notes` (lines of every card's text), `card_extras` (drawn at the bottom of every
card) and `detail_extras` (drawn in the dialog beside the result). The Batch page passes the
review's (`mirrago.ui.review.gallery_extras`) and the quality checks'
(`mirrago.ui.triage.findings`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import streamlit as st

from mirrago.backend import Backend
from mirrago.images import data_url
from mirrago.ledger import JobRecord, JobState
from mirrago.services import Services
from mirrago.ui import identity
from mirrago.ui.batch.images import (
    PAIR_WIDTH,
    card_picture,
    input_pair_picture,
    input_picture,
)
from mirrago.ui.batch.rows import batch_rows, snapshot
from mirrago.ui.frames import THUMB_SIZE, empty_frame, framed_stored
from mirrago.ui.job_card import (
    describe_input,
    job_details,
    local_image,
    result_view,
    state_badge,
    state_badge_md,
    state_words,
)
from mirrago.ui.photo import photo
from mirrago.ui.plain import md_text
from mirrago.ui.review.panel import verdict_badge_md

# Results per page. 12 by default: three rows of cards on a laptop, sent and drawn in ~0.4 s
# (24 took ~0.6 s: each card is nine elements); a reviewer who wants more picks 24 or 48.
PAGE_SIZES = (12, 24, 48)
PER_PAGE_KEY = "batch-gallery-per-page"
PAGE_KEY = "batch-gallery-page"
_FIRST_SHOWN_KEY = "batch-gallery-first"  # the index of the first card shown
DETAIL_IDS_KEY = "batch-detail-ids"  # the filtered rows' ids, in order, when the dialog opened
DETAIL_POS_KEY = "batch-detail-pos"  # which of them the dialog shows (None: closed)
_HIDE_PRELOAD = "<style>.st-key-batch-detail-preload { display: none; }</style>"

# (rows, services) -> rows: draws its own widget in the filter bar (keys "batch-filter-...").
GalleryFilter = Callable[[list[JobRecord], Services], list[JobRecord]]
# (rows, services) -> rows: the rows in another order, named by its key in `sorts`.
GallerySort = Callable[[list[JobRecord], Services], list[JobRecord]]
# (services, row) -> None: draws its widgets for one row (keys naming the row's id), at the
# bottom of a card or in the detail dialog.
RowExtra = Callable[[Services, JobRecord], None]
# (services, row) -> Markdown ("" for nothing): a line of a card's text, drawn with its state
# and row in one element (a page of cards is sent element by element).
RowNote = Callable[[Services, JobRecord], str]


def _label_filter(
    rows: list[JobRecord], label: str, key: str, value: Callable[[JobRecord], str]
) -> list[JobRecord]:
    options = sorted({value(row) for row in rows})
    if len(options) < 2:
        return rows
    chosen = st.multiselect(label, options, key=key, placeholder="All")
    return [row for row in rows if value(row) in chosen] if chosen else rows


def filter_bar(
    services: Services,
    rows: list[JobRecord],
    filters: Sequence[GalleryFilter] = (),
    sorts: Mapping[str, GallerySort] | None = None,
) -> list[JobRecord]:
    """State, username, person, garment; the extra `filters`; sort (Row, Newest and `sorts`).
    Returns the rows shown."""
    sorts = sorts or {}
    backend = services.backend
    with st.container(horizontal=True, key="batch-filters"):
        states = [state for state in JobState if any(row.state is state for row in rows)]
        chosen = st.pills(
            "State",
            states,
            selection_mode="multi",
            key="batch-filter-state",
            format_func=lambda s: JobState(s).words,
        )
        if chosen:
            rows = [row for row in rows if row.state in chosen]
        rows = _label_filter(
            rows, "Username", "batch-filter-username", lambda row: row.username or "(none)"
        )
        rows = _label_filter(
            rows,
            "Person",
            "batch-filter-person",
            lambda row: _input_label(row.target, backend, "person"),
        )
        rows = _label_filter(
            rows,
            "Garment",
            "batch-filter-garment",
            lambda row: _input_label(row.garment, backend, "garment"),
        )
        for extra in filters:
            rows = extra(rows, services)
        order = st.segmented_control(
            "Sort", ["Row", "Newest", *sorts], default="Row", required=True, key="batch-sort"
        )
    if order == "Newest":
        rows = sorted(
            rows, key=lambda row: (row.finished_at or row.created_at, row.id), reverse=True
        )
    elif order in sorts:
        rows = sorts[order](rows, services)
    return rows


@functools.lru_cache(maxsize=4096)  # a 500-row batch names a few dozen images: look each up once
def _input_label(value: str, backend: Backend, role: str) -> str:
    label = describe_input(value, backend, role)
    if label.startswith(("your ", "an image from")) and not value.startswith("http"):
        return Path(value).name
    return label


@st.cache_data(show_spinner=False)
def _placeholder(hint: str) -> str:
    return data_url(empty_frame(THUMB_SIZE, hint=hint))


def card(
    services: Services,
    row: JobRecord,
    extras: Sequence[RowExtra] = (),
    notes: Sequence[RowNote] = (),
) -> bool:
    """One result card, `notes` added to its text and `extras` drawn at its bottom; True when
    its Open button was clicked. Few elements: a page of cards is sent on every page change,
    element by element."""
    backend = services.backend
    with st.container(border=True, key=f"batch-card-{row.id}"):
        thumb = card_picture(row.thumbnail_path or row.result_path)
        if thumb is None:
            thumb = _placeholder("" if row.state.is_final else "Working…")
        st.image(thumb, width="stretch", output_format="JPEG")
        inputs = input_pair_picture(row.target, row.garment, backend)
        if inputs is not None:
            st.image(inputs, width=PAIR_WIDTH, output_format="JPEG")
        lines = [_card_text(row), *(note(services, row) for note in notes)]
        st.markdown("  \n".join(line for line in lines if line), width="stretch")
        for extra in extras:
            extra(services, row)
        return st.button(
            "Open",
            key=f"batch-open-{row.id}",
            icon=":material/open_in_full:",
            width="stretch",
            type="tertiary",
        )


def _card_text(row: JobRecord) -> str:
    """The card's state and verdict badges, its row, username and error: one Markdown element."""
    badges = " ".join(part for part in (state_badge_md(row), verdict_badge_md(row)) if part)
    lines = [f"{badges} :small[:gray[Row {row.row_index + 1}]]"]
    if row.username:
        lines.append(f":small[:gray[{md_text(row.username[:60])}]]")
    if row.error and row.state is not JobState.COMPLETED:
        lines.append(f":small[:gray[{md_text(row.error[:160])}]]")
    return "  \n".join(lines)


def gallery(
    services: Services,
    batch_id: int,
    *,
    filters: Sequence[GalleryFilter] = (),
    card_extras: Sequence[RowExtra] = (),
    card_notes: Sequence[RowNote] = (),
    sorts: Mapping[str, GallerySort] | None = None,
) -> None:
    """Filters (the built-in ones, then `filters`), the sort (with `sorts`), the paged grid of
    cards (each with `card_notes` in its text and `card_extras` below); a card's Open button
    opens the detail dialog.

    A fragment of its own: a page change, a filter or a card's verdict reruns the gallery
    alone, reading the batch's rows again (`batch_rows`: only when the batch changed), not the
    page's progress and controls above it."""

    @st.fragment
    def view() -> None:
        rows = batch_rows(services.ledger, batch_id)
        shown = filter_bar(services, rows, filters, sorts)
        if not shown:
            st.caption("No results match these filters.")
            return
        per_page = st.session_state.get(PER_PAGE_KEY) or PAGE_SIZES[0]
        pages = max(1, -(-len(shown) // per_page))
        number = 1
        with st.container(horizontal=True, vertical_alignment="bottom", key="batch-paging"):
            if pages > 1:
                number = st.pagination(pages, key=PAGE_KEY)
            start = (min(number, pages) - 1) * per_page
            st.session_state[_FIRST_SHOWN_KEY] = start
            st.caption(f"Showing {start + 1}–{min(start + per_page, len(shown))} of {len(shown):,}")
            st.space("stretch")
            if len(shown) > PAGE_SIZES[0]:
                st.segmented_control(
                    "Per page",
                    PAGE_SIZES,
                    default=PAGE_SIZES[0],
                    required=True,
                    key=PER_PAGE_KEY,
                    on_change=_keep_first_shown,
                    help="Results on a page (fewer pages, slower to turn)",
                )
        with st.grid("auto", min_column_width=200, gap="small", key="batch-grid"):
            for index, row in enumerate(shown[start : start + per_page], start=start):
                if card(services, row, card_extras, card_notes):
                    st.session_state[DETAIL_IDS_KEY] = [r.id for r in shown]
                    st.session_state[DETAIL_POS_KEY] = index
                    st.rerun(scope="app")

    view()


def _keep_first_shown() -> None:
    """Another page size: the page that holds the first card shown so far."""
    per_page = st.session_state.get(PER_PAGE_KEY) or PAGE_SIZES[0]
    st.session_state[PAGE_KEY] = st.session_state.get(_FIRST_SHOWN_KEY, 0) // per_page + 1


def _close_detail() -> None:
    st.session_state.pop(DETAIL_POS_KEY, None)


def _step(delta: int) -> None:
    ids = st.session_state.get(DETAIL_IDS_KEY) or []
    position = st.session_state.get(DETAIL_POS_KEY) or 0
    st.session_state[DETAIL_POS_KEY] = max(0, min(len(ids) - 1, position + delta))


@st.dialog("Result", width="large", on_dismiss=_close_detail)
def _detail_dialog(services: Services, extras: Sequence[RowExtra]) -> None:
    ids = st.session_state.get(DETAIL_IDS_KEY) or []
    position = st.session_state.get(DETAIL_POS_KEY) or 0
    row = services.ledger.job(ids[position]) if ids else None
    if row is None:
        st.text("This result is no longer in the ledger.")
        return
    with st.container(horizontal=True, vertical_alignment="center", key="batch-detail-nav"):
        st.button(
            "Previous",
            icon=":material/chevron_left:",
            key="batch-detail-prev",
            disabled=position == 0,
            on_click=_step,
            args=(-1,),
            shortcut="Left",
        )
        st.markdown(f"**Row {row.row_index + 1}** · {position + 1} of {len(ids)}")
        state_badge(row)
        st.button(
            "Next",
            icon=":material/chevron_right:",
            key="batch-detail-next",
            disabled=position >= len(ids) - 1,
            on_click=_step,
            args=(1,),
            shortcut="Right",
        )
    result_col, info_col = st.columns([2, 3], gap="medium")
    with result_col:
        before = local_image(row.target, services.backend)
        if row.state is JobState.COMPLETED:
            result_view(services, row, before)
        else:
            st.image(_placeholder(state_words(row)), width="stretch")
            if row.error:
                st.text(row.error)
    with info_col:
        for extra in extras:
            extra(services, row)
        _inputs(services, row)
        if row.state is not JobState.COMPLETED:  # a completed result has its own details
            job_details(row)
    _preload(
        services, row.batch_id, [*ids[position + 1 : position + 2], *ids[position - 1 : position]]
    )


def _preload(services: Services, batch_id: int, row_ids: Sequence[int]) -> None:
    """The results Next and Previous show, drawn hidden as the dialog draws them (the same
    /media/ URL): the browser has them when the key is pressed. Not with sign-in, where
    pictures are sent inside the page: nothing to fetch ahead."""
    if identity.sign_in_configured():
        return
    by_id = snapshot(services.ledger, batch_id).by_id
    with st.container(key="batch-detail-preload"):
        st.html(_HIDE_PRELOAD)
        for row_id in row_ids:
            row = by_id.get(row_id)
            framed = framed_stored(row.result_path) if row is not None else None
            if framed is not None:
                photo(framed)


def _inputs(services: Services, row: JobRecord) -> None:
    columns = st.columns(2, gap="small")
    for column, (role, value) in zip(
        columns, (("Person", row.target), ("Garment", row.garment)), strict=True
    ):
        with column:
            thumb = input_picture(value, services.backend, side=240)
            if thumb:
                st.image(thumb, width=96)
            st.caption(role)
            st.text(value)


def detail(services: Services, *, detail_extras: Sequence[RowExtra] = ()) -> None:
    """Open the detail dialog when a card asked for it, `detail_extras` drawn beside the result
    (call once per run, outside fragments)."""
    if st.session_state.get(DETAIL_POS_KEY) is not None:
        _detail_dialog(services, tuple(detail_extras))
