"""Small images for the Batch page: every picture in a table or a grid is small (never
full-size bytes: Streamlit re-sends and stores those on every run). A table's are data URLs
(all its image column takes); a card's are small JPEG files behind /media/ URLs, which the
browser keeps from one rerun to the next, except with sign-in, where no URL may serve a picture
and they are sent inside the page.

Nothing here hands the browser somebody else's link: a viewer's browser would fetch it (the
link's owner learns who looked, and when). Previews come from this machine only: the shipped
samples, the session's uploads, the results in the data dir."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import streamlit as st
from PIL import Image

from mirrago.backend import Backend
from mirrago.batchtable import Uploads, is_url
from mirrago.datadir import file_version
from mirrago.images import data_url, make_thumbnail
from mirrago.ui import identity
from mirrago.ui.job_card import sample_for

CARD_THUMB_SIDE = 320  # px: a result on a card (a stored result's thumbnail, sent as it is)
INPUT_THUMB_SIDE = 48  # px: each of the two inputs under it, as shown
TABLE_THUMB_SIDE = 64  # px: a table row is 35 px high
MAX_CARD_IMAGE = 64 * 1024  # bytes: the most any one grid image may weigh


@st.cache_data(max_entries=4096, show_spinner=False)
def _thumb_bytes(path: str, mtime: float, side: int) -> bytes | None:
    """A JPEG of the image at `path`, at most `side` px: the file itself when it already is one
    (a stored result's thumbnail: a page of new cards decodes and encodes nothing), else a new
    thumbnail."""
    try:
        data = Path(path).read_bytes()
        thumb = data if _small_jpeg(data, side) else make_thumbnail(data, max_side=side)
    except Exception:  # a missing or broken file shows as no image, never an error
        return None
    return thumb if len(thumb) <= MAX_CARD_IMAGE * 3 // 4 else None


def _small_jpeg(data: bytes, side: int) -> bool:
    """True for a JPEG at most `side` px on each side (read from its header alone)."""
    if not data.startswith(b"\xff\xd8") or len(data) > MAX_CARD_IMAGE * 3 // 4:
        return False
    with Image.open(io.BytesIO(data)) as image:
        return image.format == "JPEG" and max(image.size) <= side


@st.cache_data(max_entries=4096, show_spinner=False)
def _file_thumb(path: str, mtime: float, side: int) -> str | None:
    thumb = _thumb_bytes(path, mtime, side)
    return None if thumb is None else data_url(thumb)


def file_thumb(path: str | None, side: int = CARD_THUMB_SIDE) -> str | None:
    """A data URL of a small JPEG of a local image (cached per file version)."""
    mtime = file_version(path)
    return None if mtime is None else _file_thumb(str(path), mtime, side)


@functools.lru_cache(maxsize=4096)
def _sample_path(value: str, backend: Backend) -> str | None:
    sample = sample_for(value, backend)  # lists the samples folder: once per value
    return str(sample.path) if sample is not None else None


def _input_path(value: str, backend: Backend) -> str | None:
    """Where a recorded job input's picture is on this machine: a shipped sample, or a stored
    file; None for a link (not loaded: see above) and anything else."""
    sample = _sample_path(value, backend)
    if sample is not None:
        return sample
    if value and "://" not in value and Path(value).is_absolute():
        return value
    return None


def table_thumb(value: str, backend: Backend, uploads: Uploads) -> str | None:
    """A table cell's preview: a sandbox sample link or a photo uploaded in this session, as a
    small data URL; None for anything else. A path typed into a cell is never read."""
    if is_url(value):
        sample = _sample_path(value, backend)
        return file_thumb(sample, TABLE_THUMB_SIDE) if sample is not None else None
    stored = uploads.stored(value)
    return file_thumb(stored, TABLE_THUMB_SIDE) if stored else None


def card_picture(path: str | None, side: int = CARD_THUMB_SIDE) -> bytes | str | None:
    """A small picture of a local image for `st.image` in a card: the JPEG's bytes (served as
    a /media/ file, kept by the browser between reruns), or with sign-in its data URL."""
    mtime = file_version(path)
    if mtime is None:
        return None
    if identity.sign_in_configured():
        return _file_thumb(str(path), mtime, side)
    return _thumb_bytes(str(path), mtime, side)


def input_picture(value: str, backend: Backend, side: int = INPUT_THUMB_SIDE) -> bytes | str | None:
    """A recorded job input's picture (`_input_path`) for a card or the detail dialog (see
    `card_picture`)."""
    path = _input_path(value, backend)
    return card_picture(path, side) if path is not None else None


PAIR_GAP = 4  # px between the two inputs in `input_pair_picture`
PAIR_WIDTH = 2 * INPUT_THUMB_SIDE + PAIR_GAP  # px: drawn at its own size (Streamlit resizes
# a picture wider than its element on every run)
_PAIR_BACKGROUND = (255, 255, 255)  # a card's own background


@st.cache_data(max_entries=2048, show_spinner=False)
def _pair_bytes(files: tuple[tuple[str, float] | None, ...], side: int) -> bytes | None:
    cells = []
    for found in files:
        thumb = _thumb_bytes(found[0], found[1], side) if found else None
        cells.append(Image.open(io.BytesIO(thumb)).convert("RGB") if thumb else None)
    if not any(cells):
        return None
    height = max(cell.height for cell in cells if cell is not None)
    canvas = Image.new("RGB", (len(cells) * side + (len(cells) - 1) * PAIR_GAP, height))
    canvas.paste(_PAIR_BACKGROUND, (0, 0, *canvas.size))
    for index, cell in enumerate(cells):
        if cell is not None:
            left = index * (side + PAIR_GAP) + (side - cell.width) // 2
            canvas.paste(cell, (left, (height - cell.height) // 2))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=82)
    return out.getvalue()


def _local_input(value: str, backend: Backend) -> tuple[str, float] | None:
    """A job input's picture on this machine and its file version (the pair's cache key)."""
    path = _input_path(value, backend)
    version = file_version(path) if path else None
    return None if path is None or version is None else (path, version)


def input_pair_picture(
    target: str, garment: str, backend: Backend, side: int = INPUT_THUMB_SIDE
) -> bytes | str | None:
    """A card's two inputs (person, garment) side by side in one small picture: one element
    where two images and their row were three, on every card of every page. A link is a blank
    cell (see above); None when neither input is on this machine. Bytes (a /media/ file), or
    with sign-in a data URL (see `card_picture`)."""
    pair = _pair_bytes((_local_input(target, backend), _local_input(garment, backend)), side)
    if pair is None or not identity.sign_in_configured():
        return pair
    return data_url(pair)
