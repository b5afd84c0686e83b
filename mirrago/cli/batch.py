"""`mirrago batch INPUT.csv` runs every row of a CSV (resumable: the same command again
continues the batch in its out-dir); `mirrago batch --follow BATCH_ID` watches a batch, whoever
runs it (the Batch page's server, or another `mirrago batch`), by reading the ledger: it submits
nothing itself."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TextIO, TypeVar

from tqdm import tqdm

from mirrago.backend import describe_backend
from mirrago.backoff import keep_trying
from mirrago.batchfile import CsvBatch, read_batch_csv, write_results
from mirrago.batchprogress import progress
from mirrago.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_JOB_FAILED,
    EXIT_OK,
    print_migration_notes,
)
from mirrago.cli.progress import BatchProgressBar
from mirrago.config import load_settings
from mirrago.durations import duration_text
from mirrago.errors import MirragoError, UsageError
from mirrago.ledger import ACTIVE_STATES, BatchRecord, JobState, Ledger, LedgerUnavailableError
from mirrago.services import Services, open_services

POLL_SECONDS = 0.5  # how often `--follow` reads the ledger

T = TypeVar("T")
# What `signal.signal` returns: a handler, SIG_DFL/SIG_IGN, or None (not set from Python).
SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def run(args: argparse.Namespace) -> int:
    if args.follow is not None:
        return follow_batch(args)
    if args.csv_path is None:
        raise UsageError("batch needs INPUT.csv (or --follow BATCH_ID)")
    table = read_batch_csv(args.csv_path)
    if table.problems and not (args.skip_invalid and table.valid and table.header):
        count = len(table.problems)
        print(
            f"mirrago: {args.csv_path} has {count} problem{'s' * (count != 1)}; nothing was "
            "submitted. Fix them (or run with --skip-invalid to submit the valid rows):",
            file=sys.stderr,
        )
        for problem in table.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for problem in table.problems:
        print(f"mirrago: skipping invalid row: {problem}", file=sys.stderr)

    out_dir = (args.out_dir or args.csv_path.with_name(args.csv_path.stem + "-results")).resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {str(out_dir)!r} is a file, not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)

    with open_services(start_runner=False, batch_ids=()) as services, _Interrupt() as interrupt:
        print(f"Using {services.backend.label} at {services.backend.base_url}", file=sys.stderr)
        print_migration_notes(services.ledger)
        batch = _batch_for(
            services.ledger, table, out_dir, args.name or args.csv_path.stem, services.backend.key
        )
        runner = services.runner
        runner.add_batch(batch.id)
        notice = _LedgerNotice()

        def stop_submitting() -> None:
            if notice.shown is not None:
                raise KeyboardInterrupt  # nothing can be recorded while the ledger is away
            runner.hold()
            print(
                "\nmirrago: stopping: no new submissions; waiting for the ones in flight "
                "(Ctrl-C again to quit at once)",
                file=sys.stderr,
            )

        interrupt.on_first = stop_submitting
        runner.start()
        _wait_with_progress(services, batch.id, args.timeout, interrupt, notice)
        # Whatever the reason for stopping, no row is left mid-submission in results.csv.
        runner.drain(timeout=60)
        runner.triage.wait(timeout=60)  # what it has not checked by then, write_results checks
        counts = notice.patiently(lambda: services.ledger.counts(batch.id))
        summary = notice.patiently(
            lambda: write_results(
                services.ledger, table, batch.id, out_dir, services.backend.base_url
            )
        )
        return _batch_outcome(services, counts, table, summary, out_dir, args, interrupt.requested)


# --------------------------------------------------------------------------- the run


class _Interrupt:
    """Ctrl-C once: stop submitting and finish cleanly (exit 130). Twice: stop at once."""

    def __init__(self) -> None:
        self.requested = False
        self.on_first: Callable[[], None] = lambda: None
        self._previous: SignalHandler = None

    def __enter__(self) -> _Interrupt:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C stays a KeyboardInterrupt
            self._previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.on_first()


class _LedgerNotice:
    """One line when the job ledger stops answering, one when it is back (the runner and the
    CLI wait it out meanwhile)."""

    def __init__(self) -> None:
        self.shown: str | None = None

    def update(self, problem: str | None) -> None:
        if problem and self.shown is None:
            _say(f"mirrago: the job ledger is unreachable ({problem}); retrying — Ctrl-C to stop")
        elif problem is None and self.shown is not None:
            _say("mirrago: the job ledger answers again; carrying on")
        self.shown = problem

    def patiently(self, read: Callable[[], T]) -> T:
        """`read()`, retried while the ledger cannot be reached (Ctrl-C stops)."""

        def failed(error: BaseException) -> None:
            self.update(getattr(error, "reason", str(error)))

        result = keep_trying(read, retry_on=(LedgerUnavailableError,), on_failure=failed)
        self.update(None)
        return result


def _say(line: str) -> None:
    """A line on stderr that does not break a progress bar."""
    tqdm.write(line, file=sys.stderr)


def _batch_for(
    ledger: Ledger, table: CsvBatch, out_dir: Path, name: str, backend: str
) -> BatchRecord:
    """The batch of this out-dir: the one recorded before (resuming), or a new one."""
    source = str(out_dir)
    wanted = {row.index: row.job for row in table.valid}
    found = ledger.find_batch(source)
    if found is None:
        rows = sorted(wanted.items())
        return ledger.create_batch_rows(name, source, rows, backend=backend, private=True)
    recorded_rows = ledger.jobs(batch_id=found.id)
    recorded = {row.row_index: row.input for row in recorded_rows}
    if recorded != wanted:
        index = min(i for i in set(recorded) | set(wanted) if recorded.get(i) != wanted.get(i))
        lines = {row.index: row.line for row in table.rows}
        where = f"line {lines[index]}" if index in lines else f"data row {index + 1}"
        raise UsageError(
            f"--out-dir {source!r} holds a batch from a different CSV ({where} differs): "
            "run this CSV with another --out-dir"
        )
    elsewhere = sorted(
        {row.backend for row in recorded_rows if not row.state.is_final and row.backend != backend}
    )
    if elsewhere:
        raise UsageError(
            f"--out-dir {source!r} holds a batch whose unfinished rows wait for "
            f"{', '.join(describe_backend(key) for key in elsewhere)}, not this server: run it "
            f"with that server's settings, or move them here with `mirrago assign-backend "
            f"--batch {found.id}`"
        )
    done = sum(1 for row in recorded_rows if row.state.is_final)
    print(
        f"Resuming batch {found.id} in {source}: {done} of {len(recorded)} rows already done",
        file=sys.stderr,
    )
    return found


def _wait_with_progress(
    services: Services,
    batch_id: int,
    timeout: float | None,
    interrupt: _Interrupt,
    notice: _LedgerNotice,
) -> None:
    runner = services.runner
    total = sum(notice.patiently(lambda: services.ledger.counts(batch_id)).values())
    deadline = None if timeout is None else time.monotonic() + timeout

    with BatchProgressBar(total, sys.stderr) as bar:

        def show(counts: dict[JobState, int]) -> None:
            in_progress = counts[JobState.SUBMITTING] + counts[JobState.SUBMITTED]
            bar.show(counts, f"in progress={in_progress}")

        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            step = 0.5 if remaining is None else max(0.0, min(0.5, remaining))
            try:
                counts = runner.wait(batch_id, timeout=step, on_progress=show)
            except LedgerUnavailableError as error:
                counts = None
                notice.update(error.reason)
            else:
                notice.update(runner.ledger_problem)
            if interrupt.requested:
                return  # the caller drains what is in flight
            if counts is None:
                if remaining is not None and remaining <= 0:
                    return
                continue
            active = counts[JobState.SUBMITTING] + counts[JobState.SUBMITTED]
            if active + counts[JobState.QUEUED] == 0 or runner.paused or not runner.running:
                return
            if remaining is not None and remaining <= 0:
                return


def _status_words(status: str) -> str:
    """A results.csv status in the words the pages use for that state ("unconfirmed")."""
    try:
        return JobState(status).words.lower()
    except ValueError:  # not a row state ("invalid": a row that was never sent)
        return status


def _batch_outcome(
    services: Services,
    counts: dict[JobState, int],
    table: CsvBatch,
    summary: dict[str, int],
    out_dir: Path,
    args: argparse.Namespace,
    interrupted: bool,
) -> int:
    parts = ", ".join(f"{n} {_status_words(status)}" for status, n in sorted(summary.items()))
    written = out_dir / "results.csv"
    print(f"{len(table.rows)} rows: {parts}. Results: {written}", file=sys.stderr)
    print(written)
    active = sum(counts[state] for state in ACTIVE_STATES)
    if interrupted:
        print("mirrago: interrupted; run the same command again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    runner = services.runner
    if active and runner.paused and runner.last_error is not None:
        raise runner.last_error
    if active:
        raise MirragoError(
            f"{active} row{'s' * (active != 1)} did not finish within {args.timeout:g} s; run "
            "the same command again to continue"
        )
    if summary.get("completed", 0) == len(table.rows):
        return EXIT_OK
    return EXIT_JOB_FAILED


# --------------------------------------------------------------------------- --follow


def follow_batch(args: argparse.Namespace) -> int:
    """`mirrago batch --follow ID`: 0 when every row completed, 1 when some did not."""
    ledger = Ledger.open(load_settings())
    try:
        counts = follow(ledger, args.follow, args.timeout)
    finally:
        ledger.close()
    if counts is None:
        raise UsageError(f"there is no batch {args.follow} in this ledger")
    summary = ", ".join(f"{n} {state.words.lower()}" for state, n in counts.items() if n)
    print(f"Batch {args.follow}: {summary or 'no rows'}", file=sys.stderr)
    active = sum(counts[state] for state in ACTIVE_STATES)
    if active:
        raise MirragoError(f"{active} rows still in progress after {args.timeout:g} s")
    return EXIT_OK if counts[JobState.COMPLETED] == sum(counts.values()) else EXIT_JOB_FAILED


def follow(
    ledger: Ledger, batch_id: int, timeout: float | None = None, out: TextIO | None = None
) -> dict[JobState, int] | None:
    """Show the batch's progress until no row is active (or `timeout` passes); returns the
    final counts, or None when there is no such batch."""
    out = out or sys.stderr
    batch = ledger.batch(batch_id)
    if batch is None:
        return None
    rows = ledger.jobs(batch_id=batch_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    print(f"Following batch {batch.id} {batch.name!r}: {len(rows)} rows", file=out)
    with BatchProgressBar(len(rows), out) as bar:
        while True:
            batch = ledger.batch(batch_id) or batch
            figures = progress(batch, rows)
            eta = figures.eta_seconds
            eta_text = "" if eta is None else f" eta={duration_text(eta)}"
            bar.show(figures.counts, f"state={figures.state}{eta_text}")
            if not figures.active or (deadline is not None and time.monotonic() >= deadline):
                return figures.counts
            time.sleep(POLL_SECONDS)
            rows = ledger.jobs(batch_id=batch_id)
