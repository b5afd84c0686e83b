"""A visitor's live try-on on the stage, which leaves nothing behind.

The visitor's try-on runs through the runner like any other (the page only enqueues and reads
the ledger), in a batch of its own source (`VISITOR_SOURCE`), so no deck, Recent try-ons,
past batches or gallery ever lists it. Resetting the stage deletes it the way the privacy
delete does: its photos and result leave the disk, its ledger row is anonymised. A try-on still
running when the stage resets is deleted as soon as it ends; one whose stage was never reset
(the tab was closed) is deleted once it has been finished for twice the idle time (at least
`ABANDONED_MINUTES`: a visitor still looking at their result is never swept away).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

from mirrago.intents import delete_try_on
from mirrago.ledger import VISITOR_SOURCE, JobInput, JobRecord, JobState, Ledger, utcnow

log = logging.getLogger(__name__)

ABANDONED_MINUTES = 10.0
_pending: set[int] = set()  # rows whose stage was reset while they ran: deleted when they end
_pending_lock = threading.Lock()


def start_visitor_try_on(
    runner: object, person: str, garment: str, owner: str | None = None
) -> JobRecord | None:
    """Enqueue the visitor's try-on (`person` and `garment`: local paths or URLs)."""
    job_input = JobInput(target=person, garment=garment, background="original", owner=owner)
    rows = runner.enqueue([job_input], name="Stage visitor", source=VISITOR_SOURCE)  # type: ignore[attr-defined]
    return rows[0] if rows else None


def is_visitor_job(ledger: Ledger, job: JobRecord) -> bool:
    batch = ledger.batch(job.batch_id)
    return batch is not None and batch.source == VISITOR_SOURCE


def reset_visitor(runner: object, ledger: Ledger, row_id: int, data_dir: Path) -> bool:
    """Delete the visitor's try-on now (canceling it first when it still waits to be sent);
    True when it is gone, False when it is being processed and will be deleted when it ends."""
    job = ledger.job(row_id)
    if job is None or job.deleted_at is not None:
        return True
    if not is_visitor_job(ledger, job):
        return False  # never delete anything but a visitor's try-on from the stage
    if job.state is JobState.QUEUED:
        runner.cancel(row_id)  # type: ignore[attr-defined]
    if delete_try_on(ledger, row_id, data_dir) is not None:
        return True
    with _pending_lock:
        _pending.add(row_id)
    return False


def sweep_visitors(ledger: Ledger, data_dir: Path, idle_minutes: float) -> int:
    """Delete the visitors' try-ons that are over: reset while they ran, or finished longer
    ago than twice the idle time, at least `ABANDONED_MINUTES` (their stage was closed
    without a reset). Returns how many."""
    cutoff = utcnow() - timedelta(minutes=max(2 * idle_minutes, ABANDONED_MINUTES))
    deleted = 0
    for row_id, state, finished_at in ledger.visitor_rows():
        if not state.is_final:
            continue
        with _pending_lock:
            wanted = row_id in _pending
        if wanted or (finished_at is not None and finished_at < cutoff):
            if delete_try_on(ledger, row_id, data_dir) is not None:
                deleted += 1
            with _pending_lock:
                _pending.discard(row_id)
    return deleted
