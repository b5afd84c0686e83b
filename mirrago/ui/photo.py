"""Photos on screen that never get a shareable URL.

`st.image(bytes)` stores the picture in Streamlit's media store and shows it from a
`/media/<hash>.jpg` URL that anyone holding the URL can fetch, signed in or not. With sign-in
configured, a person photo, a result and their thumbnails are personal: they are sent inside
the page itself, as a small `data:` URL, and are reachable by no URL. Without sign-in (one
person on their own machine) pictures keep Streamlit's media URLs.
"""

from __future__ import annotations

import base64
from typing import Literal

import streamlit as st

from mirrago.ui import identity

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
    (b"\xff\xd8", "image/jpeg"),
)


def _mime(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    return "image/jpeg"


def data_url(data: bytes) -> str:
    """`data` (an encoded image) as a `data:` URL, shown by the browser without any request."""
    return f"data:{_mime(data)};base64," + base64.b64encode(data).decode("ascii")


def photo(data: bytes, *, width: int | Literal["stretch", "content"] = "stretch") -> None:
    """An image on screen: inline when sign-in is configured, so no `/media/` URL serves it."""
    if identity.sign_in_configured():
        st.image(data_url(data), width=width)
    else:
        st.image(data, width=width)
