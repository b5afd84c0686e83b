"""Where the checks run: on a row's stored result, off the runner's hot path, recorded in the
ledger.

`triage_row` checks one ledger row and records what it found (a check that raises is logged
and recorded as "not checked" with the reason). `TriageWorker` does that on one background
thread for rows handed to it by the runner after it stored their result: the runner never
waits for it, and a job is never delayed or failed by it. `rescore` checks a whole batch now
(`mirrago triage`, the Batch page, and `mirrago batch` before it writes results.csv).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from mirrago import samples
from mirrago.ledger import JobRecord, Ledger, LedgerError
from mirrago.ledger.triage import TriageRecord
from mirrago.triage.child import CheckingProcess
from mirrago.triage.flags import CHECKS_VERSION
from mirrago.triage.result import Triage

log = logging.getLogger("mirrago.triage")

# How long a stored result waits for the runner to rest before it is checked anyway (a long
# batch, or a busy app: then the checks share the CPU, at the lowest priority).
PATIENCE = 120.0


def input_file(value: str, base_url: str | None = None) -> Path | None:
    """The local file of a job input: a stored path, or a shipped sample given as the sandbox's
    `/samples/...` link (this machine's). None for anyone else's link: checks never fetch."""
    if urlsplit(value).scheme in ("http", "https"):
        sample = samples.lookup(value, hosts=samples.local_hosts(base_url))
        return sample.path if sample is not None else None
    return Path(value).expanduser() if value.strip() else None


def check_row(row: JobRecord, base_url: str | None = None) -> Triage:
    """The checks on one row's stored result (or "not checked" and why)."""
    return check_inputs(row.target, row.garment, row.result_path, row.background, base_url)


def check_inputs(
    target: str,
    garment: str,
    result_path: str | None,
    background: str | None,
    base_url: str | None = None,
) -> Triage:
    """The checks on a stored result and the inputs a row names (or "not checked" and why)."""
    if not result_path:
        return Triage.not_checked("the result was not stored on this machine")
    person_file = input_file(target, base_url)
    if person_file is None:
        return Triage.not_checked("the person photo is a link: only stored photos are checked")
    garment_file = input_file(garment, base_url)
    if garment_file is None:
        return Triage.not_checked("the garment photo is a link: only stored photos are checked")
    from mirrago.triage.check import check_result  # the image libraries: in the checking process

    return check_result(person_file, garment_file, result_path, background=background)


Check = Callable[[JobRecord, "str | None"], Triage]


def triage_row(
    ledger: Ledger, row: JobRecord, base_url: str | None = None, check: Check | None = None
) -> TriageRecord | None:
    """Check one row (with `check`, default `check_row`) and record what was found; a check
    that raises is logged and recorded as "not checked" with the reason. None when the row is
    gone."""
    return record(ledger, row, run_check(row, base_url, check))


def run_check(row: JobRecord, base_url: str | None = None, check: Check | None = None) -> Triage:
    """`check(row, base_url)`; a check that raises is logged and gives "not checked"."""
    try:
        return (check or check_row)(row, base_url)
    except Exception as error:  # noqa: BLE001 - a bug in a check must not lose the row
        log.exception("the quality checks failed on row %s", row.id)
        return Triage.not_checked(f"the checks failed ({type(error).__name__})")


def record(ledger: Ledger, row: JobRecord, found: Triage) -> TriageRecord | None:
    """Store what the checks found on the row's current attempt."""
    return ledger.record_triage(
        row.id,
        checks_version=found.version,
        score=found.score,
        flags=found.flags,
        values=found.values,
        not_checked=found.reason,
        attempt=row.attempts,
    )


def rescore(
    ledger: Ledger,
    batch_id: int,
    *,
    every: bool = False,
    base_url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Check a batch's completed rows now: those not checked by the current checks (or, with
    `every`, all). Returns how many were checked; `progress(done, total)` after each."""
    rows = ledger.rows_to_triage(batch_id, older_than=None if every else CHECKS_VERSION)
    for done, row in enumerate(rows, start=1):
        triage_row(ledger, row, base_url)
        if progress is not None:
            progress(done, len(rows))
    return len(rows)


class TriageWorker:
    """One background thread handing the rows given to it (`submit(row_id)`) to the checks, in
    order, and recording what they found.

    The runner hands it a row once the row's result is stored and recorded; `submit` never
    blocks. A row is checked once the runner rests (`busy()` is false), or `patience` s after
    it was handed over, whichever comes first. The checks themselves (a tenth of a second of
    CPU each) run in a child process that gets the CPU only when nothing else wants it, so
    they never hold this process's interpreter lock while the runner works, and the runner
    and a local sandbox come first (`check` replaces them, for a caller that wants them
    here). `wait(timeout)` waits until every row handed over so far is checked (the CLI does,
    before it writes results.csv). Worker threads never touch Streamlit.
    """

    def __init__(
        self,
        ledger: Ledger,
        base_url: str | None = None,
        *,
        check: Check | None = None,
        busy: Callable[[], bool] | None = None,
        patience: float = PATIENCE,
    ) -> None:
        self.ledger = ledger
        self.base_url = base_url
        self._check_row = check or self._in_child
        self._busy = busy or (lambda: False)
        self._patience = patience
        self._process = CheckingProcess()
        self._rows: queue.Queue[tuple[int, float] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def submit(self, row_id: int) -> None:
        with self._lock:
            if self._stopped:
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="mirrago-triage", daemon=True
                )
                self._thread.start()
        self._rows.put((row_id, time.monotonic()))

    def wait(self, timeout: float | None = None) -> bool:
        """True once every row handed over so far is checked; False after `timeout` s."""
        done = threading.Event()

        def join() -> None:
            self._rows.join()
            done.set()

        threading.Thread(target=join, daemon=True).start()
        return done.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Check no more rows (those waiting stay unchecked: `mirrago triage` finds them); wait
        up to `timeout` s for the row being checked, whose finding is then not recorded (the
        ledger may be closing)."""
        with self._lock:
            self._stopped = True
            self._stopping.set()
            thread = self._thread
        self._process.stop()  # a check in progress ends with it
        if thread is not None:
            self._rows.put(None)
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _work(self) -> None:
        while True:
            item = self._rows.get()
            try:
                if item is None:
                    return
                row_id, handed_at = item
                self._wait_for_rest(handed_at)
                if not self._stopped:
                    self._check(row_id)
            finally:
                self._rows.task_done()

    def _wait_for_rest(self, handed_at: float) -> None:
        """While the runner is busy (`busy()`), wait, up to `patience` s after the row was
        handed over: a batch's jobs come first, the checks catch up when it rests."""
        while time.monotonic() - handed_at < self._patience and not self._stopping.is_set():
            try:
                if not self._busy():
                    return
            except Exception:  # noqa: BLE001 - unknown: do not hold the checks back
                return
            self._stopping.wait(0.5)

    def _check(self, row_id: int) -> None:
        try:
            row = self.ledger.job(row_id)
            if row is None:
                return
            found = run_check(row, self.base_url, self._check_row)
            if not self._stopped:
                record(self.ledger, row, found)
        except LedgerError as error:  # unreachable: the row stays unchecked, found later
            log.warning("could not record the checks on row %s: %s", row_id, error)
        except Exception:  # noqa: BLE001 - never let the thread die
            log.exception("the quality checks failed on row %s", row_id)

    def _in_child(self, row: JobRecord, base_url: str | None) -> Triage:
        """`check_row` in the checks' own process (`mirrago.triage.child`)."""
        request = {
            "target": row.target,
            "garment": row.garment,
            "result_path": row.result_path,
            "background": row.background,
            "base_url": base_url,
        }
        return self._process.check(request)
