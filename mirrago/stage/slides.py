"""A deck's slides with their pictures read from this machine, and who may see a deck.

A slide plays from the files the ledger names for it (the result, the person and garment
photos), never from the API's result URL. A slide whose result was removed from disk by hand
becomes a plain placeholder; the rest of the deck plays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mirrago.datadir import remove_stored
from mirrago.errors import ImageError
from mirrago.images import make_thumbnail
from mirrago.ledger import DeckRecord, Ledger, SlideRecord

log = logging.getLogger(__name__)

# Pixels on the longest side of the pictures a slideshow embeds: sharp on a 1080p screen,
# small enough for a deck to be emailed.
RESULT_SIDE = 1600
INPUT_SIDE = 720


@dataclass(frozen=True)
class StageSlide:
    """One slide ready to show: JPEG bytes (None when the picture is not on this machine)."""

    slide_id: int
    result: bytes | None
    person: bytes | None
    garment: bytes | None
    person_label: str
    garment_label: str
    notes: str

    @property
    def placeholder(self) -> bool:
        """The result's file is gone: the slide shows a plain placeholder."""
        return self.result is None

    @property
    def caption(self) -> str:
        if self.person_label and self.garment_label:
            return f"{self.person_label} wearing {self.garment_label}"
        return self.garment_label or self.person_label


def slides_text(count: int) -> str:
    """ "1 slide", "3 slides"."""
    return f"{count} slide" + ("" if count == 1 else "s")


def read_picture(path: str | None, max_side: int) -> bytes | None:
    """The picture at `path` as a JPEG of at most `max_side` px; None when it is not there
    (removed by hand, a link) or is not an image."""
    if not path or "://" in path:
        return None
    try:
        return make_thumbnail(Path(path).read_bytes(), max_side=max_side)
    except (OSError, ImageError):
        return None
    except Exception:  # noqa: BLE001 - a damaged file must not stop the deck
        log.warning("a slide's picture could not be read: %s", Path(path).name)
        return None


def stage_slide(slide: SlideRecord) -> StageSlide:
    result = read_picture(slide.result_path, RESULT_SIDE)
    if result is None:  # the other pictures alone would be a misleading slide
        person = garment = None
    else:
        person = read_picture(slide.person_path, INPUT_SIDE)
        garment = read_picture(slide.garment_path, INPUT_SIDE)
    return StageSlide(
        slide.id,
        result,
        person,
        garment,
        slide.person_label or "",
        slide.garment_label or "",
        slide.notes or "",
    )


def deck_slides(ledger: Ledger, deck_id: int) -> list[StageSlide]:
    """The deck's slides in order, their pictures read from disk."""
    return [stage_slide(slide) for slide in ledger.slides(deck_id)]


def may_see_deck(deck: DeckRecord, viewer: str | None, sign_in: bool) -> bool:
    """Without sign-in everybody sees every deck; with it, its owner, or the team once shared."""
    return not sign_in or deck.shared or (viewer is not None and deck.owner == viewer)


def may_change_deck(deck: DeckRecord, viewer: str | None, sign_in: bool) -> bool:
    """Renaming, editing, sharing and deleting: the owner's (anybody's without sign-in)."""
    return not sign_in or (viewer is not None and deck.owner == viewer)


def visible_decks(ledger: Ledger, viewer: str | None, sign_in: bool) -> list[DeckRecord]:
    return [deck for deck in ledger.decks() if may_see_deck(deck, viewer, sign_in)]


def find_deck(ledger: Ledger, text: str) -> DeckRecord | None:
    """A deck by id or by name (the newest of that name)."""
    decks = ledger.decks()
    if text.strip().isdigit():
        found = next((deck for deck in decks if deck.id == int(text)), None)
        if found is not None:
            return found
    return next((deck for deck in decks if deck.name == text.strip()), None)


def remove_files(paths: list[str], data_dir: Path) -> int:
    """Remove the files a deck change left unused (see `Ledger.remove_slide`): only those
    inside the data dir (a sample or a user's own photo is never touched)."""
    return sum(remove_stored(path, data_dir) for path in paths)
