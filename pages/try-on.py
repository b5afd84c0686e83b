"""The Try-on page: pick a person and a garment, generate, watch it run, compare and download.

UI only. Generating enqueues the job with the runner (the same path as batches and the CLI);
everything shown afterwards is read back from the ledger.
"""

from __future__ import annotations

import streamlit as st

from mirrago.intents import running_twin, start_try_on
from mirrago.ledger import JobInput, JobRecord
from mirrago.services import Services
from mirrago.ui import identity, session
from mirrago.ui.frames import empty_frame
from mirrago.ui.job_card import (
    deletion_notice,
    elapsed,
    live_status,
    local_image,
    result_view,
    seconds_text,
)
from mirrago.ui.photo import photo
from mirrago.ui.routing import ensure_routed
from mirrago.ui.stage.add import add_to_deck
from mirrago.ui.tryon.picker import PickedImage, image_picker
from mirrago.ui.tryon.previews import job_preview, pick_preview, pick_signature
from mirrago.ui.tryon.recent import (
    OPENED_PICKS_KEY,
    earlier_connection,
    job_from_earlier_connection,
    open_job,
    opened_job,
    recent_strip,
    released_connection,
)

ensure_routed()

PERSON_KEY = "tryon-person"
GARMENT_KEY = "tryon-garment"
BACKGROUNDS = {"original": "Keep original", "white": "White", "studio": "Studio"}
USERNAME_MAX = 200


def _options() -> tuple[str, str | None]:
    background = st.segmented_control(
        "Background",
        list(BACKGROUNDS),
        default="original",
        required=True,
        format_func=BACKGROUNDS.__getitem__,
        key="tryon-background",
        width="stretch",
        wrap=True,  # a narrow Options column wraps "Keep original" instead of clipping it
    )
    username = st.text_input(
        "Username (optional)",
        key="tryon-username",
        placeholder="e.g. demo-acme",
        help="A reference for the request, shown in the job details (up to 200 characters).",
        max_chars=USERNAME_MAX,
    )
    return background, (username.strip()[:USERNAME_MAX] or None)


def _planned_input(
    services: Services,
    person: PickedImage,
    garment: PickedImage,
    background: str,
    username: str | None,
    *,
    save: bool,
) -> JobInput:
    data_dir = services.settings.data_dir
    return JobInput(
        target=person.job_value(services.backend, data_dir, save=save),
        garment=garment.job_value(services.backend, data_dir, save=save),
        background=background,
        username=username,
        owner=identity.current_owner(),
    )


def _generate(
    services: Services, planned: JobInput, person: PickedImage, garment: PickedImage, *, again: bool
) -> None:
    # Uploads are written only now, on the click (the planned input only named their paths).
    job_input = _planned_input(
        services, person, garment, planned.background or "original", planned.username, save=True
    )
    job, _new = start_try_on(services.runner, services.ledger, job_input, again=again)
    open_job(job.id if job else None)
    st.rerun()


def _generate_controls(
    services: Services,
    person: PickedImage | None,
    garment: PickedImage | None,
    background: str,
    username: str | None,
    opened: JobRecord | None,
) -> None:
    """Generate, or, while the same try-on is running, where it is and "Run again"."""
    planned = twin = None
    if person is not None and garment is not None:
        planned = _planned_input(services, person, garment, background, username, save=False)
        twin = running_twin(services.ledger, planned)
    again = False
    if twin is None:
        clicked = st.button(
            "Generate try-on",
            type="primary",
            icon=":material/auto_awesome:",
            width="stretch",
            disabled=planned is None,
            key="tryon-generate",
        )
        if planned is None:
            st.caption("Pick a person and a garment to generate.")
    else:
        clicked = False
        st.button(
            f"Already running — {seconds_text(elapsed(twin))}",
            type="primary",
            icon=":material/hourglass_top:",
            width="stretch",
            disabled=True,
            key="tryon-generate",
        )
        show, run_again = st.columns(2, gap="small")
        with show:
            st.button(
                "Show it",
                icon=":material/visibility:",
                width="stretch",
                disabled=opened is not None and opened.id == twin.id,
                on_click=open_job,
                args=(twin.id,),
                key="tryon-show-twin",
            )
        with run_again:
            again = st.button(
                "Run again",
                icon=":material/replay:",
                width="stretch",
                key="tryon-run-again",
                help="Starts a second try-on of the same pair: another credit.",
            )
    if (clicked or again) and planned is not None and person and garment:
        _generate(services, planned, person, garment, again=again)


def _result_column(services: Services, job: JobRecord | None) -> None:
    if job is None:
        deletion_notice()
        photo(empty_frame(hint="Your try-on appears here"))
        st.caption("Generate to see the result here.")
        return
    before = local_image(job.target, services.backend)
    if job.state.is_final:
        result_view(services, job, before)
        add_to_deck(services, job, key="tryon")
    else:
        live_status(services, job.id, before)


services = session.current_services()

st.title("Virtual try-on")
st.caption("Dress any photo in any garment. Pick a person and a garment, then generate.")

job = opened_job(services, (PERSON_KEY, GARMENT_KEY))
job_services = services
earlier = earlier_connection() if job is None else None
released = released_connection() if job is None and earlier is None else None
if released is not None:
    st.info(
        f"This try-on ran on {released}, connected before this page was refreshed. Connect "
        "again to start new try-ons there, and to see this one.",
        icon=":material/link_off:",
    )
if earlier is not None:  # a live connection's job, after a refresh: it kept running
    host, job_services = earlier
    job = job_from_earlier_connection(host, job_services)
    if job is not None:
        st.info(
            f"This try-on runs on {host}, connected before this page was refreshed: it "
            "keeps running. Connect again to start new try-ons there.",
            icon=":material/link_off:",
        )
person_col, garment_col, options_col = st.columns(3, gap="medium")
with person_col:
    st.subheader(":material/person: Person", anchor=False)
    person = image_picker("person", key=PERSON_KEY, sources=("samples", "upload", "camera", "url"))
with garment_col:
    st.subheader(":material/apparel: Garment", anchor=False)
    garment = image_picker("garment", key=GARMENT_KEY, sources=("samples", "upload", "url"))
with options_col:
    st.subheader(":material/tune: Options", anchor=False)
    background, username = _options()
    _generate_controls(services, person, garment, background, username, job)

# An opened try-on shows its own inputs until the user changes a pick.
picks = (pick_signature(person), pick_signature(garment))
if st.session_state.get(OPENED_PICKS_KEY) is None:
    st.session_state[OPENED_PICKS_KEY] = picks
show_job_inputs = job is not None and st.session_state[OPENED_PICKS_KEY] == picks

st.divider()
person_view, garment_view, result_col = st.columns(3, gap="medium")
with person_view, st.container(key="tryon-person-preview"):
    if show_job_inputs and job is not None:
        job_preview(job_services, job.target, "person")
    else:
        pick_preview(person, "Pick a person photo")
with garment_view, st.container(key="tryon-garment-preview"):
    if show_job_inputs and job is not None:
        job_preview(job_services, job.garment, "garment")
    else:
        pick_preview(garment, "Pick a garment")
with result_col, st.container(key="tryon-result"):
    _result_column(job_services, job)

st.divider()
st.subheader(":material/history: Recent try-ons", anchor=False)
recent_strip(services, job.id if job else None, person_key=PERSON_KEY, garment_key=GARMENT_KEY)
