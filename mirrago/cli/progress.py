"""The terminal progress bar of a batch, one for `mirrago batch` and `mirrago batch --follow`:
rows finished out of all, then how many completed, failed and are uncertain.

An uncertain row is counted on its own, not as failed: its job may exist on the server and may
have spent a credit, so it wants a look before a retry, which a failed row does not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from tqdm import tqdm

from mirrago.ledger import JobState


def counts_text(counts: Mapping[JobState, int]) -> str:
    """`done=3 failed=1`, and ` unconfirmed=2` when some rows are uncertain (each state in
    the words the pages use)."""
    shown = [JobState.COMPLETED, JobState.FAILED]
    if counts[JobState.UNCERTAIN]:
        shown.append(JobState.UNCERTAIN)
    return " ".join(f"{state.words.lower()}={counts[state]}" for state in shown)


class BatchProgressBar:
    """A bar over a batch's rows; `show(counts, …)` moves it to the rows that have ended."""

    def __init__(self, total: int, out: TextIO) -> None:
        self._bar = tqdm(total=total, unit="row", file=out, dynamic_ncols=True, mininterval=0.5)
        self._finished = 0

    def show(self, counts: Mapping[JobState, int], *details: str) -> None:
        """Draw `counts` (every state of the batch), then each of `details` (`state=running`)."""
        finished = sum(counts[state] for state in JobState if state.is_final)
        self._bar.update(finished - self._finished)
        self._finished = finished
        self._bar.set_postfix_str(" ".join((counts_text(counts), *details)), refresh=False)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> BatchProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
