"""`mirrago deck list` and `mirrago deck export DECK --html [FILE]`: Stage's decks from the
ledger; the slideshow is the Stage page's own (nothing is fetched from the API)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mirrago.cli.common import EXIT_OK, UsageError, check_out_path
from mirrago.config import load_settings
from mirrago.datadir import write_atomically
from mirrago.ledger import Ledger
from mirrago.stage.slides import deck_slides, find_deck, slides_text
from mirrago.stage.slideshow import slideshow_file_name, slideshow_html


def run(args: argparse.Namespace) -> int:
    ledger = Ledger.open(load_settings())
    try:
        if args.deck_action == "list":
            return _list(ledger)
        return _export(ledger, args)
    finally:
        ledger.close()


def _list(ledger: Ledger) -> int:
    decks = ledger.decks()
    if not decks:
        print('No decks yet: add results to one with "Add to deck" in the app.')
    for deck in decks:
        shared = "  (shared)" if deck.shared else ""
        print(f"{deck.id:>5}  {slides_text(deck.slide_count):>10}  {deck.name}{shared}")
    return EXIT_OK


def _export(ledger: Ledger, args: argparse.Namespace) -> int:
    if args.html is None:
        raise UsageError("mirrago deck export: choose --html [FILE]")
    deck = find_deck(ledger, args.deck)
    if deck is None:
        raise UsageError(
            f"mirrago deck export: no deck {args.deck[:80]!r} in the ledger; give a deck id or "
            "name (`mirrago deck list` shows them)"
        )
    slides = deck_slides(ledger, deck.id)
    target = Path(args.html or slideshow_file_name(deck.id, deck.name))
    check_out_path(target)
    write_atomically(target, slideshow_html(deck.name, slides, key=f"deck-{deck.id}"))
    missing = sum(slide.placeholder for slide in slides)
    note = f" ({slides_text(missing)} without their pictures)" if missing else ""
    print(f"slideshow: {target} — {slides_text(len(slides))}{note}")
    return EXIT_OK
