"""Try-on's two input previews: the photo picked now, or the one an opened try-on used."""

from __future__ import annotations

import hashlib

import streamlit as st

from mirrago.services import Services
from mirrago.ui.frames import empty_frame, framed, link_frame
from mirrago.ui.job_card import describe_input, local_image
from mirrago.ui.photo import photo
from mirrago.ui.tryon.picker import PickedImage


def pick_preview(pick: PickedImage | None, hint: str) -> None:
    if pick is None:
        photo(empty_frame(hint=hint))
        st.caption("Not picked yet")
        return
    frame = framed(pick.preview) if pick.preview else None
    if frame is not None:
        photo(frame)
    elif pick.link:
        link_frame(pick.link, "No preview here: the service fetches the link itself")
    else:
        photo(empty_frame())
    st.caption(pick.label)


def job_preview(services: Services, value: str, role: str) -> None:
    """One input of the open try-on, as that try-on used it."""
    data = local_image(value, services.backend) if value else None
    frame = framed(data) if data else None
    if frame is not None:
        photo(frame)
    elif value.startswith(("http://", "https://")):
        link_frame(value, "No preview here: the service fetched the link itself")
    else:
        photo(empty_frame(hint="Not kept" if value else "Deleted"))
    words = describe_input(value, services.backend, role) if value else "deleted"
    st.caption(f"{words[:1].upper()}{words[1:]} · used by this try-on")


def pick_signature(pick: PickedImage | None) -> tuple[object, ...] | None:
    """What a pick is, to notice when the user changes it after opening a try-on."""
    if pick is None:
        return None
    digest = hashlib.sha256(pick.preview).hexdigest() if pick.preview else None
    return (pick.source, pick.label, pick.link, digest)
