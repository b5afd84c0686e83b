"""`mirrago batch --follow ID`: watch a batch from the shell, whoever runs it (the Batch page's
server, or another `mirrago batch`), by reading the ledger; it submits nothing itself."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from mirrago.batchprogress import duration_text, progress
from mirrago.ledger import JobState, Ledger

POLL_SECONDS = 0.5


def follow(ledger: Ledger, batch_id: int, timeout: float | None = None,
           out: TextIO | None = None) -> dict[JobState, int] | None:
    """Show the batch's progress until no row is active (or `timeout` passes); returns the
    final counts, or None when there is no such batch."""
    from tqdm import tqdm

    out = out or sys.stderr
    batch = ledger.batch(batch_id)
    if batch is None:
        return None
    rows = ledger.jobs(batch_id=batch_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    print(f"Following batch {batch.id} {batch.name!r}: {len(rows)} rows", file=out)
    bar = tqdm(total=len(rows), unit="row", file=out, dynamic_ncols=True, mininterval=0.5)
    shown = 0
    try:
        while True:
            batch = ledger.batch(batch_id) or batch
            figures = progress(batch, rows)
            bar.update(figures.finished - shown)
            shown = figures.finished
            counts = figures.counts
            eta = figures.eta_seconds
            eta_text = "" if eta is None else f" eta={duration_text(eta)}"
            bar.set_postfix_str(
                f"done={counts[JobState.COMPLETED]} failed={counts[JobState.FAILED]} "
                f"state={figures.state}{eta_text}",
                refresh=False,
            )
            if not figures.active or (deadline is not None and time.monotonic() >= deadline):
                return counts
            time.sleep(POLL_SECONDS)
            rows = ledger.jobs(batch_id=batch_id)
    finally:
        bar.close()
