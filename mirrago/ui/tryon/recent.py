"""Which try-on is open (kept in the session and the URL, so a refresh or a shared link reopens
it), and the "Recent try-ons" strip read from the ledger."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from mirrago.ledger import JobRecord, Origin
from mirrago.services import Services
from mirrago.ui import identity, session
from mirrago.ui.frames import THUMB_SIZE, dimmed, empty_frame, framed, framed_file
from mirrago.ui.job_card import local_image, sample_for, state_badge
from mirrago.ui.photo import photo
from mirrago.ui.tryon.picker import select_sample

OPEN_KEY = "tryon-open-row"
QUERY_KEY = "job"
# The pickers' picks when a try-on was opened: while they stay the same, the previews show
# the opened try-on's own inputs (see pages/try-on.py).
OPENED_PICKS_KEY = "tryon-opened-picks"
SEE_ALL_KEY = "tryon-see-all"
RECENT_COUNT = 6
SEE_ALL_COUNT = 30
REFRESH_SECONDS = 2.0


def open_job(row_id: int | None) -> None:
    """Show row `row_id` (None: none) in this session and in the page's URL.

    The URL names the ledger too (`?job=12` on the server's own backend, `?job=12@host` on a
    live endpoint connected from the sidebar), so a link never opens another ledger's row 12.
    """
    st.session_state.pop(OPENED_PICKS_KEY, None)
    _remember(row_id)


def _remember(row_id: int | None) -> None:
    if row_id is None:
        st.session_state.pop(OPEN_KEY, None)
        st.query_params.pop(QUERY_KEY, None)
        return
    st.session_state[OPEN_KEY] = row_id
    tag = session.ledger_tag()
    st.query_params[QUERY_KEY] = f"{row_id}@{tag}" if tag else str(row_id)


def _row_in_url(tag_wanted: str | None = None) -> int | None:
    text = st.query_params.get(QUERY_KEY, "")
    number, _, tag = text.partition("@")
    if not number.isdigit() or tag != (session.ledger_tag() if tag_wanted is None else tag_wanted):
        return None
    return int(number)


def earlier_connection() -> tuple[str, Services] | None:
    """When the URL opens a try-on of a live connection this session is not connected to
    (a refresh ends the session's connection) but this server still runs: its host and
    services."""
    _, _, tag = st.query_params.get(QUERY_KEY, "").partition("@")
    services = session.connected_earlier(tag)
    return (tag, services) if services is not None else None


def released_connection() -> str | None:
    """When the URL opens a try-on of a live connection this server no longer holds (it was
    released once idle, or the server restarted): its host."""
    _, _, tag = st.query_params.get(QUERY_KEY, "").partition("@")
    if not tag or tag == session.ledger_tag() or session.connected_earlier(tag) is not None:
        return None
    return tag


def job_from_earlier_connection(tag: str, services: Services) -> JobRecord | None:
    """That try-on, read-only (the session keeps no connection of its own)."""
    row_id = _row_in_url(tag)
    job = services.ledger.job(row_id) if row_id is not None else None
    if job is None or job.deleted_at is not None or not identity.may_see(job):
        return None
    return job


def opened_job(services: Services, pickers: tuple[str, str] | None = None) -> JobRecord | None:
    """The open try-on: this session's choice, else the URL's `?job=` (a refresh, a new tab)."""
    row_id = st.session_state.get(OPEN_KEY)
    from_url = row_id is None
    if from_url:
        row_id = _row_in_url()
    if row_id is None:
        return None
    job = services.ledger.job(row_id)
    # Someone else's try-on (with sign-in) is "not found", exactly like a missing one.
    if job is None or job.deleted_at is not None or not identity.may_see(job):
        open_job(None)
        return None
    if from_url and pickers is not None:  # a link or a refresh: pickers show its samples too
        for key, value in zip(pickers, (job.target, job.garment), strict=True):
            if (sample := sample_for(value, services.backend)) is not None:
                select_sample(key, sample.name)
    # Keep both in step: the URL may have come without session state, or the reverse.
    _remember(row_id)
    return job


def recent_jobs(services: Services, limit: int = RECENT_COUNT) -> list[JobRecord]:
    """The newest try-ons made on this page that this session may see (batches from other
    pages, deleted try-ons and, with sign-in, other people's are left out)."""
    found: list[JobRecord] = []
    for batch in services.ledger.batches(limit=limit * 8):
        if batch.source != Origin.TRY_ON:
            continue
        found.extend(
            job
            for job in services.ledger.jobs(batch_id=batch.id)
            if job.deleted_at is None and identity.may_see(job)
        )
        if len(found) >= limit:
            break
    return found[:limit]


def _reopen(row_id: int, pickers: dict[str, str]) -> None:
    """Open a recent try-on; pickers whose input was a sample show that sample again."""
    open_job(row_id)
    for key, sample_name in pickers.items():
        select_sample(key, sample_name)


def _thumbnail(job: JobRecord, services: Services) -> bytes:
    for path in (job.thumbnail_path, job.result_path):
        thumb = framed_file(path, THUMB_SIZE) if path else None
        if thumb:
            return thumb
    person = local_image(job.target, services.backend)
    if person:
        faded = dimmed(person)
        if faded:
            return framed(faded, THUMB_SIZE) or empty_frame(THUMB_SIZE)
    return empty_frame(THUMB_SIZE)


def recent_strip(
    services: Services,
    selected: int | None,
    *,
    person_key: str,
    garment_key: str,
) -> None:
    """The newest try-ons as cards; "Open" shows one (and its sample inputs in the pickers).
    While one of them is in progress the strip reads the ledger again every few seconds, so
    a second tab sees it finish without a click."""
    limit = SEE_ALL_COUNT if st.session_state.get(SEE_ALL_KEY) else RECENT_COUNT
    busy = any(not job.state.is_final for job in recent_jobs(services, limit))

    @st.fragment(run_every=REFRESH_SECONDS if busy else None)
    def strip() -> None:
        jobs = recent_jobs(services, limit)
        if not jobs:
            st.caption("Your try-ons will appear here. They are kept across refreshes and tabs.")
            return
        with st.grid(6, min_column_width=150, gap="small", key="tryon-recent"):
            for job in jobs:
                _card(services, job, selected, person_key, garment_key)
        if busy and all(job.state.is_final for job in jobs):
            st.rerun(scope="app")  # the last one finished: let the whole page catch up
        _see_all(len(jobs), limit)

    strip()


def _card(
    services: Services, job: JobRecord, selected: int | None, person_key: str, garment_key: str
) -> None:
    with st.container(border=True, key=f"tryon-recent-{job.id}"):
        photo(_thumbnail(job, services))
        state_badge(job, services.runner.backend)
        st.caption(job.created_at.astimezone().strftime("%d %b · %H:%M:%S"))
        is_open = job.id == selected
        pickers = {
            key: sample.name
            for key, value in ((person_key, job.target), (garment_key, job.garment))
            if (sample := sample_for(value, services.backend)) is not None
        }
        st.button(
            "Showing" if is_open else "Open",
            key=f"tryon-reopen-{job.id}",
            icon=":material/visibility:" if is_open else ":material/open_in_full:",
            disabled=is_open,
            width="stretch",
            on_click=_reopen,
            args=(job.id, pickers),
        )


_USAGE_PAGE = Path(__file__).resolve().parents[3] / "pages" / "usage.py"  # beside mirrago/


def _see_all(shown: int, limit: int) -> None:
    """ "See all": the Usage page's history when the app has one, else a longer list here."""
    if _USAGE_PAGE.exists():
        if st.button("See all", icon=":material/arrow_forward:", key="tryon-see-all-button"):
            st.switch_page("pages/usage.py")
        return
    if limit == RECENT_COUNT and shown >= RECENT_COUNT:
        st.button(
            "See all",
            icon=":material/expand_more:",
            key="tryon-see-all-button",
            on_click=lambda: st.session_state.update({SEE_ALL_KEY: True}),
        )
    elif limit > RECENT_COUNT:
        st.button(
            "Show fewer",
            icon=":material/expand_less:",
            key="tryon-see-all-button",
            on_click=lambda: st.session_state.update({SEE_ALL_KEY: False}),
        )
