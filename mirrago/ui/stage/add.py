""" "Add to deck": one small widget for any finished result (Try-on, batch cards, the batch
detail dialog): choose a deck, or create one on the spot, and the result becomes its last
slide. The slide names the result's files and the inputs' pictures on this machine."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from mirrago.errors import MirragoError
from mirrago.ledger import DeckRecord, JobRecord, JobState
from mirrago.services import Services
from mirrago.stage.slides import may_change_deck, visible_decks
from mirrago.ui import identity
from mirrago.ui.job_card import sample_for
from mirrago.ui.plain import md_text

LABEL = "Add to deck"
NEW_DECK = 0  # the choice "A new deck"


def local_picture(value: str, services: Services) -> tuple[str | None, str | None]:
    """A job input's picture on this machine and its label: a shipped sample (its file and
    title), a stored upload (its path), or (None, None) for somebody else's link."""
    sample = sample_for(value, services.backend)
    if sample is not None:
        return str(sample.path), sample.title
    if "://" in value or not value or not Path(value).is_file():
        return None, None
    return value, None


def my_decks(services: Services) -> list[DeckRecord]:
    """The decks this session may add to: all of them without sign-in, else its own."""
    owner, sign_in = identity.current_owner(), identity.sign_in_configured()
    decks = visible_decks(services.ledger, owner, sign_in)
    return [deck for deck in decks if may_change_deck(deck, owner, sign_in)]


def add_job_to_deck(services: Services, deck_id: int, job: JobRecord) -> int:
    """Add `job` as the deck's last slide; its number in the deck."""
    person_path, person_label = local_picture(job.target, services)
    garment_path, garment_label = local_picture(job.garment, services)
    services.ledger.add_slide(
        deck_id,
        job.id,
        person_path=person_path,
        garment_path=garment_path,
        person_label=person_label,
        garment_label=garment_label,
    )
    return len(services.ledger.slides(deck_id))


def add_to_deck(services: Services, job: JobRecord, *, key: str) -> None:
    """The "Add to deck" popover for a finished result (nothing for any other)."""
    if job.state is not JobState.COMPLETED or not job.result_path or job.deleted_at:
        return
    # The deck list is read and drawn only while the menu is open: a gallery page would
    # otherwise read the decks and send a closed form once per card on every change.
    with st.popover(
        LABEL,
        icon=":material/slideshow:",
        width="stretch",
        key=f"{key}-deck-pop-{job.id}",
        on_change="rerun",
    ) as menu:
        if not menu.open:
            return
        decks = my_decks(services)
        names = {deck.id: deck.name for deck in decks}
        choice = st.selectbox(
            "Deck",
            [*names, NEW_DECK],
            format_func=lambda deck_id: names.get(deck_id, "A new deck…"),
            key=f"{key}-deck-choice-{job.id}",
        )
        new_name = ""
        if choice == NEW_DECK:
            new_name = st.text_input(
                "New deck's name",
                key=f"{key}-deck-name-{job.id}",
                max_chars=120,
                placeholder="e.g. Acme, spring collection",
            )
        if st.button("Add", type="primary", key=f"{key}-deck-add-{job.id}", icon=":material/add:"):
            _add(services, job, choice, new_name)


def _add(services: Services, job: JobRecord, choice: int, new_name: str) -> None:
    try:
        if choice == NEW_DECK:
            deck: DeckRecord | None = services.ledger.create_deck(
                new_name, owner=identity.current_owner()
            )
        else:
            deck = services.ledger.deck(choice)
        if deck is None:
            st.warning("That deck was deleted meanwhile: choose another one.")
            return
        number = add_job_to_deck(services, deck.id, job)
    except MirragoError as error:
        st.warning(str(error), icon=":material/warning:")
        return
    st.success(
        f"Added to **{md_text(deck.name[:60])}** as slide {number}. "
        f"[Present it](/stage?deck={deck.id})",
        icon=":material/check_circle:",
    )


def card_add_to_deck(services: Services, job: JobRecord) -> None:
    """ "Add to deck" on a batch gallery card (the gallery's `card_extras`)."""
    add_to_deck(services, job, key="stage-add-card")


def detail_add_to_deck(services: Services, job: JobRecord) -> None:
    """ "Add to deck" in the batch detail dialog (the gallery's `detail_extras`)."""
    add_to_deck(services, job, key="stage-add-detail")
