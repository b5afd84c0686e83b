"""The image picker: a person or garment photo from the shipped samples, an upload, the camera
or a link, checked and prepared before anything is sent.

`image_picker` draws the controls and returns a `PickedImage` (or None while nothing usable is
picked; a bad file or link gets its message right under the widget). `PickedImage.job_value`
turns the pick into what the ledger stores: a sandbox URL for samples on the sandbox, a path
under `data_dir/inputs/` for uploads and camera shots, the link itself for links.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import streamlit as st

from mirrago import samples
from mirrago.backend import Backend
from mirrago.datadir import input_path, save_input
from mirrago.errors import ImageError
from mirrago.images import PreparedImage, describe, prepare_image
from mirrago.ui.frames import THUMB_SIZE, framed_file

Role = Literal["person", "garment"]
Source = Literal["samples", "upload", "camera", "url"]

SOURCE_LABELS: dict[str, str] = {
    "samples": "Samples",
    "upload": "Upload",
    "camera": "Camera",
    "url": "Link",
}
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "avif", "heic", "heif"]


@dataclass(frozen=True)
class PickedImage:
    """A usable image for one side of a try-on, and where its preview comes from."""

    role: Role
    source: Source
    label: str
    preview: bytes | None = None  # image bytes to frame; None when only a link is known
    link: str | None = None
    prepared: PreparedImage | None = None
    sample: samples.Sample | None = None

    def job_value(self, backend: Backend, data_dir: Path, *, save: bool = True) -> str:
        """What to enqueue for this side: a URL or a local path (`save=False`: the path an
        upload will have, without writing it)."""
        if self.sample is not None:
            if backend.is_sandbox:
                return sample_url(backend, self.sample)
            return str(self.sample.path)
        if self.prepared is not None:
            if not save:
                return str(input_path(self.prepared, data_dir))
            return str(save_input(self.prepared, data_dir))
        assert self.link is not None
        return self.link


def sample_url(backend: Backend, sample: samples.Sample) -> str:
    """The sandbox serves the shipped samples: a URL keeps demo jobs identical to URL batches."""
    return f"{backend.base_url.rstrip('/')}/samples/{sample.relative_path}"


@st.cache_data(max_entries=32, show_spinner="Checking the photo…")
def _prepare(data: bytes, role: Role) -> tuple[PreparedImage | None, str | None]:
    """Prepare once per distinct upload: a 12 MP photo takes a moment to decode and shrink."""
    try:
        return prepare_image(data, role=role), None
    except ImageError as error:
        return None, str(error)


def check_image_link(text: str) -> str | None:
    """None when `text` looks like an http(s) image link, else what is wrong with it."""
    link = text.strip()
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https"):
        return "A link must start with http:// or https://."
    host = parts.hostname or ""
    if not host or " " in link:
        return "That does not look like a web address: copy the image's full link."
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost" and "." not in host:
            return "That does not look like a web address: copy the image's full link."
    return None


def _sample_choices(role: Role) -> list[samples.Sample]:
    return samples.persons() if role == "person" else samples.garments()


def _pick_sample(role: Role, key: str) -> PickedImage | None:
    choices = {sample.name: sample for sample in _sample_choices(role)}
    if not choices:
        st.info("No sample images are installed.", icon=":material/info:")
        return None
    state_key = f"{key}-sample"
    if st.session_state.get(state_key) not in choices:
        first = samples.first_pick(role)
        st.session_state[state_key] = first.name if first else next(iter(choices))
    chosen = st.session_state[state_key]
    # A grid that reflows (6 across on a wide column, 4 on a phone) of clickable thumbnails:
    # each carries a see-through button over the image (see brand.py), and the pills below
    # give the full titles, which do not fit under a thumbnail.
    with st.grid(6, min_column_width=56, gap="xsmall", key=f"{key}-thumbs"):
        for sample in choices.values():
            thumb = framed_file(sample.path, THUMB_SIZE, selected=sample.name == chosen)
            with st.container(key=f"{key}-thumb-{sample.name}", gap=None):
                if thumb is not None:
                    st.image(thumb, width="stretch")
                st.button(
                    sample.title,
                    key=f"{key}-pick-{sample.name}",
                    on_click=select_sample,
                    args=(key, sample.name),
                    width="stretch",
                )
    st.pills(
        f"Sample {role}",
        list(choices),
        required=True,
        format_func=lambda name: choices[name].title,
        key=state_key,
        label_visibility="collapsed",
        wrap=True,
    )
    sample = choices[st.session_state[state_key]]
    return PickedImage(
        role=role,
        source="samples",
        label=sample.title,
        preview=sample.path.read_bytes(),
        sample=sample,
    )


def _from_bytes(role: Role, source: Source, label: str, data: bytes) -> PickedImage | None:
    prepared, problem = _prepare(data, role)
    if prepared is None:
        st.error(problem or "This file could not be read as an image.", icon=":material/error:")
        return None
    if prepared.resized:
        st.caption(f":material/compress: Shrunk for upload: {describe(prepared)}")
    return PickedImage(
        role=role, source=source, label=label, preview=prepared.data, prepared=prepared
    )


def _pick_upload(role: Role, key: str) -> PickedImage | None:
    upload = st.file_uploader(
        f"{role.capitalize()} photo",
        type=UPLOAD_TYPES,
        key=f"{key}-upload",
        help="JPG, PNG, WebP, AVIF or iPhone HEIC. Large photos are shrunk before upload.",
    )
    if upload is None:
        return None
    return _from_bytes(role, "upload", upload.name, upload.getvalue())


def _pick_camera(role: Role, key: str) -> PickedImage | None:
    shot = st.camera_input("Take a photo", key=f"{key}-camera")
    if shot is None:
        return None
    return _from_bytes(role, "camera", "Camera photo", shot.getvalue())


def _pick_link(role: Role, key: str) -> PickedImage | None:
    text = st.text_input(
        "Image link",
        key=f"{key}-url",
        placeholder="https://…/photo.jpg",
        help="A public link to a JPG or PNG image. The service downloads it itself.",
    )
    if not text.strip():
        return None
    problem = check_image_link(text)
    if problem:
        st.error(problem, icon=":material/error:")
        return None
    link = text.strip()
    return PickedImage(role=role, source="url", label=urlsplit(link).netloc, link=link)


def select_sample(key: str, name: str) -> None:
    """Make the picker `key` show the sample `name` (reopening a try-on made from samples)."""
    st.session_state[f"{key}-source"] = "samples"
    st.session_state[f"{key}-sample"] = name


_PICKERS = {
    "samples": _pick_sample,
    "upload": _pick_upload,
    "camera": _pick_camera,
    "url": _pick_link,
}


def image_picker(role: Role, *, key: str, sources: tuple[Source, ...]) -> PickedImage | None:
    """Draw the source switch and the chosen source's input; return the pick, if usable."""
    source_key = f"{key}-source"
    if st.session_state.get(source_key) not in sources:
        # Set through the state, not `default=`: reopening a try-on may set it too.
        st.session_state[source_key] = sources[0]
    source = st.segmented_control(
        f"Where the {role} photo comes from",
        list(sources),
        required=True,
        format_func=SOURCE_LABELS.__getitem__,
        key=source_key,
        label_visibility="collapsed",
        width="stretch",
        wrap=True,  # never clip a choice: narrow columns wrap it onto a second line
    )
    return _PICKERS[source](role, key)
