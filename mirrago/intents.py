"""One job per intent, and deleting a try-on: the rules between a click and the ledger.

A second Generate with the same inputs and options while the first is still queued or running
(a double click, an impatient user, a second tab) points to the running job instead of
spending another credit. A deliberate second run goes through `again=True` ("Run again").

Deleting a try-on removes its stored photos, result and thumbnail from disk, takes it out of
every Stage deck, and leaves an anonymised row in the ledger, so the usage figures stay right.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from mirrago.datadir import remove_stored
from mirrago.ledger import ACTIVE_STATES, JobInput, JobRecord, Ledger, Origin

log = logging.getLogger(__name__)

# Check-then-enqueue must be one step: two sessions (two tabs of one user) may click at once.
_START_LOCK = threading.Lock()


def running_twin(ledger: Ledger, job_input: JobInput) -> JobRecord | None:
    """The newest queued or running job with exactly these inputs, options and owner."""
    for row in ledger.jobs(states=ACTIVE_STATES, newest_first=True):
        if row.deleted_at is None and row.input == job_input:
            return row
    return None


def start_try_on(
    runner: object, ledger: Ledger, job_input: JobInput, *, again: bool = False
) -> tuple[JobRecord | None, bool]:
    """Enqueue one try-on unless the same one is running; returns (the job, whether it is
    new). `again=True` enqueues even so. `runner` is the `Runner` (its `enqueue`)."""
    with _START_LOCK:
        if not again:
            twin = running_twin(ledger, job_input)
            if twin is not None:
                return twin, False
        rows = runner.enqueue([job_input], name="Try-on", source=Origin.TRY_ON)  # type: ignore[attr-defined]
        return (rows[0] if rows else None), True


@dataclass(frozen=True)
class DeletedTryOn:
    """A try-on deleted on purpose: the names of the decks that lost its slide."""

    decks: tuple[str, ...] = ()


def delete_try_on(ledger: Ledger, row_id: int, data_dir: Path) -> DeletedTryOn | None:
    """Delete a finished try-on: its slides in every deck, its files (those under `data_dir`
    that no other row or slide uses) and everything personal in its row. None when it is
    missing or still in progress."""
    before = ledger.forget(row_id)
    if before is None:
        return None
    decks = ledger.remove_row_from_decks(row_id)
    for value in (before.target, before.garment, before.result_path, before.thumbnail_path):
        remove_stored(value, data_dir, in_use=ledger.uses_file)  # a sample, or shared: kept
    return DeletedTryOn(tuple(decks))
