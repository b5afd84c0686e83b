"""The Try-on page: pick a person and a garment, generate, watch it run, compare and download.

UI only. Generating enqueues the job with the runner (the same path as batches and the CLI);
everything shown afterwards is read back from the ledger.
"""

from __future__ import annotations

import streamlit as st

from mirrago.ledger import JobInput, JobRecord
from mirrago.services import Services
from mirrago.ui import session
from mirrago.ui.frames import empty_frame, framed, link_frame
from mirrago.ui.job_card import live_status, local_image, result_view
from mirrago.ui.picker import PickedImage, image_picker
from mirrago.ui.recent import open_job, opened_job, recent_strip
from mirrago.ui.routing import ensure_routed

ensure_routed()

PERSON_KEY = "tryon-person"
GARMENT_KEY = "tryon-garment"
BACKGROUNDS = {"original": "Keep original", "white": "White", "studio": "Studio"}


def _preview(pick: PickedImage | None, hint: str) -> None:
    if pick is None:
        st.image(empty_frame(hint=hint), width="stretch")
        st.caption("Not picked yet")
        return
    frame = framed(pick.preview) if pick.preview else None
    if frame is not None:
        st.image(frame, width="stretch")
    elif pick.link:
        link_frame(pick.link, "No preview here: the service fetches the link itself")
    else:
        st.image(empty_frame(), width="stretch")
    st.caption(pick.label)


def _options() -> tuple[str, str | None]:
    background = st.segmented_control(
        "Background",
        list(BACKGROUNDS),
        default="original",
        required=True,
        format_func=BACKGROUNDS.__getitem__,
        key="tryon-background",
        width="stretch",
    )
    username = st.text_input(
        "Username (optional)",
        key="tryon-username",
        placeholder="e.g. demo-acme",
        help="A reference for the request, shown in the job details.",
    )
    return background, (username.strip() or None)


def _generate(services: Services, person: PickedImage, garment: PickedImage,
              background: str, username: str | None) -> None:
    data_dir = services.settings.data_dir
    job_input = JobInput(
        target=person.job_value(services.backend, data_dir),
        garment=garment.job_value(services.backend, data_dir),
        background=background,
        username=username,
    )
    batch = services.runner.enqueue([job_input], name="Try-on", source="try-on")
    rows = services.ledger.jobs(batch_id=batch.id)
    open_job(rows[0].id if rows else None)


def _result_column(services: Services, job: JobRecord | None) -> None:
    if job is None:
        st.image(empty_frame(hint="Your try-on appears here"), width="stretch")
        st.caption("Generate to see the result here.")
        return
    before = local_image(job.target, services.backend)
    if job.state.is_final:
        result_view(services, job, before)
    else:
        live_status(services, job.id, before)


services = session.current_services()

st.title("Virtual try-on")
st.caption("Dress any photo in any garment. Pick a person and a garment, then generate.")

person_col, garment_col, options_col = st.columns(3, gap="medium")
with person_col:
    st.subheader(":material/person: Person", anchor=False)
    person = image_picker("person", key=PERSON_KEY,
                          sources=("samples", "upload", "camera", "url"))
with garment_col:
    st.subheader(":material/apparel: Garment", anchor=False)
    garment = image_picker("garment", key=GARMENT_KEY, sources=("samples", "upload", "url"))
with options_col:
    st.subheader(":material/tune: Options", anchor=False)
    background, username = _options()
    ready = person is not None and garment is not None
    clicked = st.button(
        "Generate try-on",
        type="primary",
        icon=":material/auto_awesome:",
        width="stretch",
        disabled=not ready,
        key="tryon-generate",
    )
    if not ready:
        st.caption("Pick a person and a garment to generate.")
    if clicked and person is not None and garment is not None:
        _generate(services, person, garment, background, username)

job = opened_job(services)

st.divider()
person_view, garment_view, result_col = st.columns(3, gap="medium")
with person_view, st.container(key="tryon-person-preview"):
    _preview(person, "Pick a person photo")
with garment_view, st.container(key="tryon-garment-preview"):
    _preview(garment, "Pick a garment")
with result_col, st.container(key="tryon-result"):
    _result_column(services, job)

st.divider()
st.subheader(":material/history: Recent try-ons", anchor=False)
recent_strip(services, job.id if job else None, person_key=PERSON_KEY, garment_key=GARMENT_KEY)
