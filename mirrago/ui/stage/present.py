"""Presenting a deck: the slideshow page (`mirrago.stage.slideshow`, the same file the
"Slideshow HTML" download holds) filling the screen, with the app's sidebar, toolbar and
running indicator hidden, and the two page buttons the slideshow presses (Leave, Try it live).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import streamlit as st

from mirrago.ledger import DeckRecord, Ledger
from mirrago.stage.slides import deck_slides
from mirrago.stage.slideshow import LEAVE_BUTTON, LIVE_BUTTON, slideshow_html

FRAME_TITLE = "Deck slideshow"

# Everything of the app but the slideshow leaves the screen; the slideshow's iframe covers it.
FULL_SCREEN_CSS = f"""
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stExpandSidebarButton"], header[data-testid="stHeader"],
[data-testid="stToolbar"], [data-testid="stStatusWidget"], [data-testid="stDecoration"],
.st-key-stage-hidden {{ display: none !important; }}
html, body, [data-testid="stApp"], [data-testid="stMain"] {{ overflow: hidden !important; }}
[data-testid="stMainBlockContainer"] {{ padding: 0 !important; }}
iframe[title="{FRAME_TITLE}"] {{
  position: fixed; inset: 0; width: 100vw !important; height: 100vh !important;
  z-index: 999990; border: 0; background: #17142a; }}
</style>
"""


def hide_app_chrome() -> None:
    """No sidebar, toolbar, running indicator or page padding on this run."""
    st.html(FULL_SCREEN_CSS)


def _signature(ledger: Ledger, deck: DeckRecord) -> tuple[object, ...]:
    """What the slideshow is made of: slides, notes and their files' modification times."""
    parts: list[object] = [deck.name]
    for slide in ledger.slides(deck.id):
        times = []
        for path in slide.paths:
            try:
                times.append(os.stat(path).st_mtime_ns)
            except OSError:
                times.append(None)
        parts.append((slide.id, slide.notes, slide.person_label, slide.garment_label, *times))
    return tuple(parts)


@st.cache_data(max_entries=8, show_spinner="Preparing the deck…")
def _deck_page(
    _ledger: Ledger, deck_id: int, name: str, signature: tuple[object, ...], embedded: bool
) -> str:
    return slideshow_html(
        name, deck_slides(_ledger, deck_id), key=f"deck-{deck_id}", embedded=embedded
    )


def deck_page(ledger: Ledger, deck: DeckRecord, *, embedded: bool) -> str:
    """The deck's slideshow page (rebuilt only when a slide, a note or a file changed)."""
    return _deck_page(ledger, deck.id, deck.name, _signature(ledger, deck), embedded)


def present(
    ledger: Ledger, deck: DeckRecord, on_leave: Callable[[], None], on_live: Callable[[], None]
) -> None:
    """The deck full-screen; Esc (or Leave) calls `on_leave`, L (or Try it live) `on_live`."""
    hide_app_chrome()
    # Out of the flow (fixed, full screen): its place in the page must take no height.
    st.iframe(deck_page(ledger, deck, embedded=True), height=1, alt=FRAME_TITLE)
    with st.container(key="stage-hidden"):
        st.button("Leave", key=LEAVE_BUTTON, on_click=on_leave)
        st.button("Try it live", key=LIVE_BUTTON, on_click=on_live)
