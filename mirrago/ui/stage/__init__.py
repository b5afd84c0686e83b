"""Stage page widgets: presenting, the deck manager, Try it live, and "Add to deck"."""
