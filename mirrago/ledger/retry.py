"""Ledger calls made through an outage: a write retried until the ledger takes it, a step that
may simply be made again later, and what the ledger's problem is meanwhile (the runner's)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from mirrago.backoff import backoff
from mirrago.ledger.records import LedgerUnavailableError

log = logging.getLogger("mirrago.runner")


class LedgerRetry:
    """The runner's ledger calls while the ledger may be away. `abandon` is set when answers
    still unrecorded are given up; `on_back` runs when the ledger answers again (before the
    problem is cleared), `wake` after it is cleared, `on_change` whenever the problem changes."""

    def __init__(
        self,
        abandon: threading.Event,
        wake: threading.Event,
        on_change: Callable[[], None],
        on_back: Callable[[], None],
    ) -> None:
        self.problem: str | None = None  # why the ledger cannot be reached, meanwhile
        self.failures = 0
        self._abandon = abandon
        self._wake = wake
        self._on_change = on_change
        self._on_back = on_back

    def record(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A ledger write that records a server's answer: retried (capped backoff) until the
        ledger takes it, the answer held here meanwhile, so no job id or result is lost. Only
        when `stop` has waited its time is it given up (the row then stays as it was: the
        next runner recovers it)."""
        attempt = 0
        while True:
            try:
                result = write(*args, **kwargs)
            except LedgerUnavailableError as error:
                self.failed(error)
                if self._abandon.wait(backoff(attempt, cap=5.0)):
                    log.warning("stopped before the ledger came back; not recorded: %s", error)
                    return None
                attempt += 1
                continue
            self.ok()
            self._on_change()
            return result

    def step(self, step: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """One ledger call that may simply be made again later; False when it failed."""
        try:
            step(*args, **kwargs)
        except LedgerUnavailableError as error:
            self.failed(error)
            return False
        self.ok()
        return True

    def failed(self, error: LedgerUnavailableError) -> None:
        self.failures += 1
        if self.problem != error.reason:
            if self.problem is None:
                log.warning("%s Retrying.", error)
            self.problem = error.reason
            self._on_change()

    def ok(self) -> None:
        if self.problem is not None:
            log.warning("the job ledger answers again")
            self._on_back()
            self.problem = None
            self.failures = 0
            self._wake.set()
            self._on_change()

    def retry_delay(self) -> float:
        return backoff(max(0, self.failures - 1), cap=5.0)
