"""The Stage page: decks of results for sales, presented full-screen and steered from the keyboard,
with a live try-on for a visitor that leaves nothing behind.

UI only. `/stage` manages the decks; `/stage?deck=<id>` presents one (Esc comes back here).
Decks live in the ledger; the visitor's try-on is enqueued with the runner and read back from
the ledger, like every try-on.
"""

from __future__ import annotations

import streamlit as st

from mirrago.ledger import DeckRecord
from mirrago.stage.slides import may_change_deck, may_see_deck
from mirrago.stage.visitors import sweep_visitors
from mirrago.ui import identity, session
from mirrago.ui.routing import ensure_routed
from mirrago.ui.stage.live import LIVE_KEY, live_view, open_live
from mirrago.ui.stage.manager import CHOSEN_KEY, deck_manager
from mirrago.ui.stage.present import present

ensure_routed()

DECK_PARAM = "deck"

services = session.current_services()
settings = services.settings
owner, sign_in = identity.current_owner(), identity.sign_in_configured()
# A visitor whose stage was closed without a reset: their try-on goes once it is old enough.
sweep_visitors(services.ledger, settings.data_dir, settings.stage_idle_minutes)


def _present(deck_id: int) -> None:
    st.query_params[DECK_PARAM] = str(deck_id)


def _leave() -> None:
    """Esc: back to the manager, on the deck that was playing."""
    deck_id = st.query_params.pop(DECK_PARAM, None)
    if deck_id and deck_id.isdigit():
        st.session_state[CHOSEN_KEY] = int(deck_id)


def _live(deck_id: int) -> None:
    _present(deck_id)
    open_live(deck_id)


def _requested() -> tuple[str | None, DeckRecord | None]:
    """The `?deck=` of the URL, and the deck when this session may see it."""
    text = st.query_params.get(DECK_PARAM)
    if not text:
        return None, None
    deck = services.ledger.deck(int(text)) if text.isdigit() else None
    if deck is None or not may_see_deck(deck, owner, sign_in):
        return text, None  # someone else's deck is "not here", exactly like a missing one
    return text, deck


asked, deck = _requested()
if deck is not None and st.session_state.get(LIVE_KEY) == deck.id:
    live_view(services, deck, settings.stage_idle_minutes)
elif deck is not None:
    present(services.ledger, deck, on_leave=_leave, on_live=lambda: open_live(deck.id))
else:
    st.title("Stage")
    st.caption(
        "Decks of results to present full-screen: → ← next and previous (a clicker's "
        "PageDown/PageUp too), Space before/after, N your notes, Esc back here."
    )
    if asked is not None:
        st.warning(
            "There is no deck with that number here (it was deleted, or is not shared with "
            "you). Choose one below.",
            icon=":material/search_off:",
        )
    decks = [d for d in services.ledger.decks() if may_see_deck(d, owner, sign_in)]
    deck_manager(
        services,
        decks,
        lambda d: may_change_deck(d, owner, sign_in),
        on_present=_present,
        on_live=_live,
    )
