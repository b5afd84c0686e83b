"""Stage, the presentation mode for sales, without the UI: a deck's slides read from the data
dir (`slides`), the one self-contained slideshow page that plays them (`slideshow`, used by the
Stage page and `mirrago deck export`), and a visitor's live try-on that leaves nothing behind
(`visitors`). The decks themselves are kept by the ledger (`mirrago.ledger.decks`)."""
