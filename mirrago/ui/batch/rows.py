"""The rows of the batch on screen, read from the ledger once per change of the batch.

A key press in Review, a step of the detail dialog or a page of the gallery reruns part of the
page; each asks the ledger only whether the batch changed (`Ledger.batch_version`: three
aggregate reads, about a millisecond) and reads its rows, verdict ids and review history again
only when it did. A write made here (a verdict, an undo) patches the one row it changed instead
of reading them all again, when the version shows it was the only change.

Kept per browser session (`st.session_state`, one batch at a time): every view of a session
shares one read, and no session sees another's objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from mirrago.ledger import BatchVersion, JobRecord, Ledger, ReviewRecord

SNAPSHOT_KEY = "batch-rows.snapshot"


@dataclass
class Snapshot:
    """One batch as read at `version`; the verdict ids and history are read when first asked."""

    batch_id: int
    version: BatchVersion
    rows: list[JobRecord]
    review_ids: dict[int, int] | None = None
    history: list[ReviewRecord] | None = None
    by_id: dict[int, JobRecord] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {row.id: row for row in self.rows}


def snapshot(ledger: Ledger, batch_id: int) -> Snapshot:
    """The batch as the ledger has it now (read again only when it changed)."""
    version = ledger.batch_version(batch_id)
    found = st.session_state.get(SNAPSHOT_KEY)
    if isinstance(found, Snapshot) and found.batch_id == batch_id and found.version == version:
        return found
    made = Snapshot(batch_id, version, ledger.jobs(batch_id=batch_id))
    st.session_state[SNAPSHOT_KEY] = made
    return made


def batch_rows(ledger: Ledger, batch_id: int) -> list[JobRecord]:
    """The batch's rows in row order, as the ledger has them now."""
    return snapshot(ledger, batch_id).rows


def review_ids(ledger: Ledger, batch_id: int) -> dict[int, int]:
    """Row id → the id of its current review (`Ledger.current_review_ids`), as of now."""
    found = snapshot(ledger, batch_id)
    if found.review_ids is None:
        found.review_ids = ledger.current_review_ids(batch_id)
    return found.review_ids


def review_history(ledger: Ledger, batch_id: int) -> list[ReviewRecord]:
    """Every verdict given in the batch, oldest first (`Ledger.reviews`), as of now."""
    found = snapshot(ledger, batch_id)
    if found.history is None:
        found.history = ledger.reviews(batch_id=batch_id)
    return found.history


def wrote_row(ledger: Ledger, row_id: int, *, reviews_added: int) -> None:
    """This session just changed row `row_id` (adding `reviews_added` verdicts to the history:
    1 for a verdict, 0 for an undo or a retry). When the batch's version moved by exactly that,
    the row is read alone; otherwise everything is read again at the next look."""
    found = st.session_state.get(SNAPSHOT_KEY)
    if not isinstance(found, Snapshot) or row_id not in found.by_id:
        return
    version = ledger.batch_version(found.batch_id)
    before = found.version
    row = ledger.job(row_id)
    only_ours = (
        row is not None
        and version.rows == before.rows
        and version.reviews == before.reviews + reviews_added
        and (version.name, version.paused) == (before.name, before.paused)
    )
    if row is None or not only_ours:
        st.session_state.pop(SNAPSHOT_KEY, None)
        return
    found.rows = [row if old.id == row_id else old for old in found.rows]
    found.by_id[row_id] = row
    found.version = version
    found.review_ids = None  # cheap reads: the next look makes them again
    found.history = None
