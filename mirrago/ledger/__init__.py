"""The persistent record of every batch, job and credit reading (being split into a package)."""

from mirrago.ledger.store import *  # noqa: F403
from mirrago.ledger.store import (  # noqa: F401
    _add_reviews_and_comparisons,
)
