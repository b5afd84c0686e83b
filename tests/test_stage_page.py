"""The Stage page's deck manager through AppTest (embedded sandbox, a real ledger): the empty
state, renaming, reordering, notes, removing a slide and a deck, and a deck that is not here."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from support import stored_try_on

from mirrago.ledger import Ledger

pytestmark = pytest.mark.app

APP = "../app.py"


def _stage(deck: int | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/stage.py")
    if deck is not None:
        at.query_params["deck"] = str(deck)
    at.run()
    assert not at.exception, at.exception
    return at


def _deck(ledger: Ledger, data_dir: Path, slides: int) -> tuple[int, list[int]]:
    deck = ledger.create_deck("Acme")
    ids = []
    for index in range(slides):
        job = stored_try_on(ledger, data_dir, f"page-{index}")
        ids.append(ledger.add_slide(deck.id, job.id, garment_label=f"Garment {index}").id)
    return deck.id, ids


def test_without_decks_the_page_says_how_to_make_one(data_dir: Path) -> None:
    at = _stage()
    assert "Add to deck" in at.info[0].value


def test_the_manager_renames_reorders_notes_and_removes(app_ledger: Ledger, data_dir: Path) -> None:
    deck_id, ids = _deck(app_ledger, data_dir, 3)
    at = _stage()
    at.text_input(key=f"stage-name-{deck_id}").input("Acme, spring").run()
    assert app_ledger.deck(deck_id).name == "Acme, spring"  # type: ignore[union-attr]
    at.button(key=f"stage-later-{ids[0]}").click().run()
    assert [s.id for s in app_ledger.slides(deck_id)] == [ids[1], ids[0], ids[2]]
    at.text_area(key=f"stage-notes-{ids[2]}").input("<b>Mention</b> returns").run()
    assert app_ledger.slides(deck_id)[2].notes == "<b>Mention</b> returns"
    at.button(key=f"stage-remove-{ids[1]}").click().run()
    assert [s.id for s in app_ledger.slides(deck_id)] == [ids[0], ids[2]]
    at.button(key=f"stage-delete-{deck_id}").click().run()
    assert not at.exception and app_ledger.decks() == []


def test_a_deck_that_is_not_here_says_so(data_dir: Path) -> None:
    at = _stage(deck=999)
    assert "no deck with that number" in at.warning[0].value
