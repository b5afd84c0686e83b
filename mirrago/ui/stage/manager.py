"""The Stage page's deck manager: choose a deck, present it, export it, rename, share or delete
it, and put its slides in order with their presenter notes."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from mirrago.ledger import DeckRecord, SlideRecord
from mirrago.services import Services
from mirrago.stage.slides import remove_files, slides_text
from mirrago.stage.slideshow import slideshow_file_name
from mirrago.ui import identity
from mirrago.ui.frames import THUMB_SIZE, empty_frame, framed_file
from mirrago.ui.photo import photo
from mirrago.ui.plain import md_text
from mirrago.ui.stage.present import deck_page

CHOSEN_KEY = "stage-chosen-deck"
SLIDES_PER_ROW = 5


def deck_manager(
    services: Services,
    decks: list[DeckRecord],
    may_change: Callable[[DeckRecord], bool],
    on_present: Callable[[int], None],
    on_live: Callable[[int], None],
) -> None:
    if not decks:
        st.info(
            "No decks yet. On the Try-on page (or a batch's results) choose **Add to deck** "
            "under a result: a new deck can be made on the spot.",
            icon=":material/slideshow:",
        )
        return
    names = {deck.id: deck for deck in decks}
    if st.session_state.get(CHOSEN_KEY) not in names:
        st.session_state[CHOSEN_KEY] = decks[0].id
    chosen = st.selectbox(
        "Deck",
        list(names),
        format_func=lambda deck_id: (
            f"{names[deck_id].name} · {slides_text(names[deck_id].slide_count)}"
        ),
        key=CHOSEN_KEY,
    )
    deck = names[chosen]
    _actions(services, deck, on_present, on_live)
    if may_change(deck):
        _settings(services, deck)
    _slides(services, deck, may_change(deck))


def _actions(
    services: Services,
    deck: DeckRecord,
    on_present: Callable[[int], None],
    on_live: Callable[[int], None],
) -> None:
    present, live, export = st.columns(3, gap="small")
    with present:
        st.button(
            "Present",
            type="primary",
            icon=":material/slideshow:",
            width="stretch",
            key="stage-present",
            on_click=on_present,
            args=(deck.id,),
            disabled=deck.slide_count == 0,
            help="Full screen. Keys: → ← next/previous, Space before/after, N notes, Esc leave.",
        )
    with live:
        st.button(
            "Try it live",
            icon=":material/photo_camera:",
            width="stretch",
            key="stage-try-live",
            on_click=on_live,
            args=(deck.id,),
            help="A visitor's own photo in one of the deck's garments; Reset leaves nothing.",
        )
    with export:
        st.download_button(
            "Slideshow HTML",
            data=lambda: deck_page(services.ledger, deck, embedded=False),
            file_name=slideshow_file_name(deck.id, deck.name),
            mime="text/html",
            icon=":material/download:",
            width="stretch",
            key="stage-export",
            on_click="ignore",
            help="One file with the pictures inside: it plays offline, with the same keys.",
        )


def _settings(services: Services, deck: DeckRecord) -> None:
    rename, share, delete = st.columns([3, 2, 1], vertical_alignment="bottom", gap="small")
    with rename:
        name = st.text_input("Name", value=deck.name, max_chars=120, key=f"stage-name-{deck.id}")
        if name.strip() and name.strip() != deck.name:
            services.ledger.rename_deck(deck.id, name)
            st.rerun()
    with share:
        if identity.sign_in_configured():
            shared = st.toggle(
                "Shared with the team",
                value=deck.shared,
                key=f"stage-share-{deck.id}",
                help="Off: only you see this deck. On: everyone signed in can present it.",
            )
            if shared != deck.shared:
                services.ledger.set_deck_shared(deck.id, shared)
                st.rerun()
    with delete, st.popover("Delete", icon=":material/delete:", width="stretch"):
        st.write("The deck and its slides go; the try-ons themselves stay.")
        if st.button("Delete the deck", type="primary", key=f"stage-delete-{deck.id}"):
            remove_files(services.ledger.delete_deck(deck.id), services.settings.data_dir)
            st.session_state.pop(CHOSEN_KEY, None)
            st.rerun()


def _slides(services: Services, deck: DeckRecord, editable: bool) -> None:
    slides = services.ledger.slides(deck.id)
    if not slides:
        st.caption("This deck has no slides yet: add results with **Add to deck**.")
        return
    order = [slide.id for slide in slides]
    with st.grid(SLIDES_PER_ROW, min_column_width=190, gap="small", key="stage-slides"):
        for number, slide in enumerate(slides, 1):
            with st.container(border=True, key=f"stage-slide-{slide.id}"):
                _slide_card(services, deck, slide, number, order, editable)


def _thumbnail(slide: SlideRecord) -> bytes:
    for path in (slide.thumbnail_path, slide.result_path):
        thumb = framed_file(path, THUMB_SIZE) if path else None
        if thumb:
            return thumb
    return empty_frame(THUMB_SIZE, hint="Pictures removed")


def _slide_card(
    services: Services,
    deck: DeckRecord,
    slide: SlideRecord,
    number: int,
    order: list[int],
    editable: bool,
) -> None:
    photo(_thumbnail(slide))
    label = slide.garment_label or "Result"
    st.caption(f"{number}. {md_text(label[:60])}")
    if not editable:
        if slide.notes:
            st.caption(md_text(slide.notes[:300]))
        return
    st.text_area(
        "Presenter notes",
        value=slide.notes or "",
        key=f"stage-notes-{slide.id}",
        max_chars=4000,
        height=90,
        placeholder="Only you see these: press N while presenting.",
        on_change=lambda: services.ledger.set_slide_notes(
            slide.id, st.session_state[f"stage-notes-{slide.id}"]
        ),
    )
    earlier, later, remove = st.columns(3, gap="small")
    index = order.index(slide.id)
    with earlier:
        st.button(
            "",
            icon=":material/arrow_back:",
            key=f"stage-earlier-{slide.id}",
            help="Earlier in the deck",
            disabled=index == 0,
            on_click=_move,
            args=(services, deck.id, order, index, -1),
            width="stretch",
        )
    with later:
        st.button(
            "",
            icon=":material/arrow_forward:",
            key=f"stage-later-{slide.id}",
            help="Later in the deck",
            disabled=index == len(order) - 1,
            on_click=_move,
            args=(services, deck.id, order, index, 1),
            width="stretch",
        )
    with remove:
        st.button(
            "",
            icon=":material/close:",
            key=f"stage-remove-{slide.id}",
            help="Remove this slide (the try-on stays)",
            on_click=_remove,
            args=(services, slide.id),
            width="stretch",
        )


def _move(services: Services, deck_id: int, order: list[int], index: int, step: int) -> None:
    moved = list(order)
    moved.insert(index + step, moved.pop(index))
    services.ledger.reorder_slides(deck_id, moved)


def _remove(services: Services, slide_id: int) -> None:
    remove_files(services.ledger.remove_slide(slide_id), services.settings.data_dir)
