"""Photos on screen that never get a shareable URL.

`st.image(bytes)` stores the picture in Streamlit's media store and shows it from a
`/media/<hash>.jpg` URL that anyone holding the URL can fetch, signed in or not. With sign-in
configured, a person photo, a result and their thumbnails are personal: they are sent inside
the page itself, as a small `data:` URL, and are reachable by no URL. Without sign-in (one
person on their own machine) pictures keep Streamlit's media URLs.
"""

from __future__ import annotations

from typing import Literal

import streamlit as st

from mirrago.images import data_url
from mirrago.ui import identity


def photo(data: bytes, *, width: int | Literal["stretch", "content"] = "stretch") -> None:
    """An image on screen: inline when sign-in is configured, so no `/media/` URL serves it."""
    if identity.sign_in_configured():
        st.image(data_url(data), width=width)
    else:
        st.image(data, width=width)
