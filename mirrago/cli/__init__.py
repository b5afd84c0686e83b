"""The `mirrago` command line: `sandbox`, `try-on`, `batch` and `usage` (batch files: batchfile.py).

`try-on` and `batch` go through the runner and the ledger like every job (one path for every
job). Exit codes: 0 completed, 1 a job failed (or is uncertain), 2 bad input or usage (nothing
submitted), 3 authentication, network or server error, 130 interrupted. Every error is one
line on stderr (a CSV's problems: one line each); a traceback only with `--debug`.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mirrago import __version__
from mirrago.batchfile import (
    BACKGROUNDS,
    BatchFileError,
    CsvBatch,
    is_url,
    iso,
    read_batch_csv,
    write_results,
)
from mirrago.config import load_settings
from mirrago.errors import (
    AuthenticationError,
    BadRequestError,
    ImageError,
    InsufficientCreditsError,
    MirragoError,
)

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_SERVICE = 3
EXIT_INTERRUPTED = 130

class UsageError(Exception):
    """Bad command-line input: exit 2, nothing submitted."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (argparse prints the usage block too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _latency(text: str) -> float | tuple[float, float]:
    """`2` (fixed) or `2-5` (uniform range), in seconds."""
    try:
        if "-" in text.strip().lstrip("-"):
            low, high = (float(part) for part in text.split("-", 1))
            if 0 <= low <= high:
                return (low, high)
        elif float(text) >= 0:
            return float(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a latency like 2 or 2-5 (seconds)")


def _rate(text: str) -> float:
    value = _positive_float(text) if text not in ("0", "0.0") else 0.0
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mirrago", description="Mirrago Studio: virtual try-on from the shell.")
    parser.add_argument("--version", action="version", version=f"mirrago-studio {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    # `--debug` is accepted after the command too; SUPPRESS keeps the top-level value otherwise.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and debug logs",
    )

    sandbox = commands.add_parser(
        "sandbox", parents=[common], help="run the local Mirrago sandbox server"
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8700)
    sandbox.add_argument(
        "--latency",
        type=_latency,
        default=(2.0, 5.0),
        help="seconds per job: 2 (fixed) or 2-5 (random); default 2-5",
    )
    sandbox.add_argument("--workers", type=int, default=4, help="jobs rendered at once")
    sandbox.add_argument(
        "--rate-limit",
        type=_positive_float,
        default=None,
        help="submits per second per client (default: unlimited)",
    )
    sandbox.add_argument(
        "--fail-rate",
        type=_rate,
        default=0.0,
        help="share of submits answered with a plain 500 (no job created)",
    )
    sandbox.add_argument(
        "--read-fail-rate", type=_rate, default=0.0, help="share of job reads answered with a 500"
    )
    sandbox.add_argument(
        "--job-fail-rate",
        type=_rate,
        default=0.0,
        help="share of jobs that end failed (credit refunded)",
    )
    sandbox.add_argument("--token-ttl", type=_positive_float, default=3600.0)
    sandbox.add_argument("--credits", type=int, default=1000, help="starting balance")
    sandbox.add_argument("--seed", type=int, default=None)
    sandbox.add_argument(
        "--strict-reference",
        action="store_true",
        help="answer exactly like the published reference (completedc, "
        "'500 Rate Limit', result_url null)",
    )
    sandbox.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="also fetch image URLs on loopback and private networks (tests, local use)",
    )
    sandbox.add_argument(
        "--print-openapi",
        action="store_true",
        help="write the sandbox's OpenAPI document (JSON) to stdout and exit",
    )

    try_on = commands.add_parser("try-on", parents=[common], help="dress one person in one garment")
    try_on.add_argument("target", metavar="TARGET", help="person photo: a file or an http(s) URL")
    try_on.add_argument("garment", metavar="GARMENT", help="garment photo: a file or an URL")
    try_on.add_argument("--background", choices=BACKGROUNDS, default=None)
    try_on.add_argument("--username", default=None)
    try_on.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the result (default tryon-<job_id>.<ext>)",
    )
    try_on.add_argument(
        "--timeout",
        type=_positive_float,
        default=120.0,
        help="seconds to wait for the result (default 120)",
    )
    try_on.add_argument("--json", action="store_true", help="print the final job as JSON")

    batch = commands.add_parser(
        "batch",
        parents=[common],
        help="run every pair of a CSV file; resumable",
        description="Run every row of INPUT.csv (columns target_image_url, garment_image_url, "
        "optional background, username; local file paths are allowed in the image columns, "
        "relative to the CSV's folder). Writes DIR/results.csv and the images under DIR/. "
        "Running the same command again continues the batch in DIR.",
    )
    batch.add_argument("csv_path", metavar="INPUT.csv", type=Path, nargs="?")
    batch.add_argument(
        "--follow",
        metavar="BATCH_ID",
        type=_positive_int,
        default=None,
        help="instead of running a file, show the progress of batch BATCH_ID (one started on "
        "the Batch page, say) until it finishes",
    )
    batch.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="folder for results.csv and the images (default: INPUT-results next to the CSV)",
    )
    batch.add_argument("--name", default=None, help="a name for the batch (default: the file's)")
    batch.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        help="stop waiting after this many seconds (default: until every row is done)",
    )
    batch.add_argument(
        "--skip-invalid",
        action="store_true",
        help="submit the valid rows even when some rows are invalid",
    )

    # --- export (issue 10) ---
    export = commands.add_parser(
        "export",
        parents=[common],
        help="write a batch's Results CSV, Images ZIP or HTML report",
        description="Export a batch from the ledger (by id, or by name: the newest of that "
        "name). Each option takes a file name; without one the file is named after the batch "
        "in the current folder. Nothing is fetched from the API.",
    )
    export.add_argument("batch", metavar="BATCH", help="batch id or name")
    for flag, what in (
        ("--csv", "Results CSV"),
        ("--zip", "Images ZIP"),
        ("--html", "HTML report"),
    ):
        export.add_argument(
            flag, nargs="?", const="", default=None, type=str, metavar="FILE", help=f"the {what}"
        )
    # --- end export (issue 10) ---

    usage = commands.add_parser(
        "usage",
        parents=[common],
        help="credits: balance, burn rate, run-out date, outside use and the daily statement",
    )
    usage.add_argument(
        "--days", type=_positive_int, default=30, help="the last N days (default 30)"
    )
    usage.add_argument(
        "--csv", action="store_true", help="print the daily statement as CSV, nothing else"
    )

    assign = commands.add_parser(
        "assign-backend",
        parents=[common],
        help="let this server run the unfinished jobs of an unknown server",
        description="Jobs recorded before the ledger knew which server each job is for wait "
        "(they are never submitted by themselves). This gives the unfinished ones to the "
        "server configured now (MIRRAGO_BASE_URL, or the local sandbox).",
    )
    assign.add_argument(
        "--batch", type=_positive_int, default=None, help="only this batch (default: every one)"
    )
    return parser


def read_image_argument(text: str, *, role: str, name: str) -> str | bytes:
    """A URL is passed through; a local file is read and prepared. Raises UsageError."""
    from mirrago.images import prepare_image

    if is_url(text):
        return text
    if "://" in text:
        raise UsageError(f"{name} {text!r} is neither a local file nor an http(s) URL")
    path = Path(text)
    if not path.is_file():
        raise UsageError(f"{name} {text!r}: no such file")
    try:
        return prepare_image(path.read_bytes(), role=role).data  # type: ignore[arg-type]
    except ImageError as error:
        raise UsageError(f"{name} {text!r}: {error}") from None
    except OSError as error:
        raise UsageError(f"{name} {text!r}: cannot be read ({error.strerror})") from None


def _check_out_path(out: Path | None) -> None:
    if out is not None and not out.parent.resolve().is_dir():
        raise UsageError(f"--out {str(out)!r}: the folder {str(out.parent)!r} does not exist")


def _stored_input(text: str) -> str:
    """How an image argument is recorded in the ledger: a URL as is, a file by absolute path
    (the runner may run in another working directory)."""
    return text if is_url(text) else str(Path(text).resolve())


# --------------------------------------------------------------------------- try-on


def run_try_on(args: argparse.Namespace) -> int:
    from mirrago.ledger import JobInput, JobState
    from mirrago.services import open_services

    # Checked before anything starts: bad input exits 2 with nothing submitted.
    read_image_argument(args.target, role="person", name="TARGET")
    read_image_argument(args.garment, role="garment", name="GARMENT")
    _check_out_path(args.out)
    job_input = JobInput(
        _stored_input(args.target),
        _stored_input(args.garment),
        background=args.background,
        username=args.username,
    )

    with open_services(start_runner=False, batch_ids=(), max_transient_failures=3) as services:
        backend, runner, ledger = services.backend, services.runner, services.ledger
        print(f"Using {backend.label} at {backend.base_url}", file=sys.stderr)
        _print_migration_notes(ledger)
        started = time.monotonic()
        [row] = runner.enqueue([job_input], name="try-on", source="cli:try-on")
        runner.start()
        row = _follow(services, row.batch_id, row.id, started, args.timeout)

        if row.state is JobState.COMPLETED and row.result_path:
            result = Path(row.result_path)  # saved by the runner as results/<job_id>.<ext>
            out = args.out or Path(f"tryon-{row.job_id}{result.suffix}")
            shutil.copyfile(result, out)
            print(f"Completed in {time.monotonic() - started:.1f} s", file=sys.stderr)
            if args.json:
                print(json.dumps({**_row_json(row), "result_file": str(out)}, indent=2))
            else:
                print(out)
            return EXIT_OK
        return _try_on_failure(row, runner, args)


def _follow(services: Any, batch_id: int, row_id: int, started: float, timeout: float) -> Any:
    """Wait for the one row, showing its progress on stderr; returns the row as it ends."""
    ledger, runner = services.ledger, services.runner
    deadline = started + timeout
    announced, last_label = False, ""
    while True:
        row = ledger.job(row_id)
        if row.job_id and not announced:
            announced = True
            print(
                f"Submitted job {row.job_id} (credits before: {row.credits_before})",
                file=sys.stderr,
            )
        label = row.server_status if row.job_id and row.server_status else row.state.value
        # Nothing to say before a job id exists: "queued (0.0 s)" would claim a request was sent.
        if row.job_id and not row.state.is_final and label != last_label:
            last_label = label
            print(f"  {label} ({time.monotonic() - started:.1f} s)", file=sys.stderr)
        remaining = deadline - time.monotonic()
        if row.state.is_final or runner.paused or not runner.running or remaining <= 0:
            return row
        runner.wait(batch_id, timeout=min(0.5, remaining))


def _try_on_failure(row: Any, runner: Any, args: argparse.Namespace) -> int:
    from mirrago.ledger import JobState

    if row.state is JobState.FAILED and row.job_id:
        reason = row.error or "the server gave no reason"
        print(f"mirrago: job {row.job_id} failed: {reason}", file=sys.stderr)
        if args.json:
            print(json.dumps(_row_json(row), indent=2))
        return EXIT_JOB_FAILED
    if row.state is JobState.COMPLETED:  # completed, but the result could not be fetched
        raise MirragoError(f"Job {row.job_id} completed but {row.error or 'has no result'}")
    service_error = runner.last_error
    if row.state is JobState.FAILED and not isinstance(
        service_error, AuthenticationError | InsufficientCreditsError
    ):
        raise UsageError(row.error or "the server refused the request")
    if row.state is JobState.UNCERTAIN:
        raise MirragoError(row.error or "the submission's outcome is unknown")
    if service_error is not None and row.state in (JobState.QUEUED, JobState.FAILED):
        raise service_error
    where = f"job {row.job_id}" if row.job_id else "the job"
    raise MirragoError(
        f"{where.capitalize()} did not finish within {args.timeout:g} s (last status: "
        f"{row.server_status or row.state.value}). It may still finish: check it later with "
        "its job id."
    )


def _row_json(row: Any) -> dict[str, object]:
    from mirrago.ledger import JobState

    status = {JobState.COMPLETED: "completed", JobState.FAILED: "failed"}.get(row.state)
    return {
        "job_id": row.job_id,
        "status": status or row.state.value,
        "raw_status": row.server_status,
        "cloth_id": row.cloth_id,
        "credits_before": row.credits_before,
        "result_url": row.result_url,
        "error_message": row.error,
        "submitted_at": iso(row.submitted_at),
        "finished_at": iso(row.finished_at),
    }


# --------------------------------------------------------------------------- batch: the run


class _Interrupt:
    """Ctrl-C once: stop submitting and finish cleanly (exit 130). Twice: stop at once."""

    def __init__(self) -> None:
        self.requested = False
        self.on_first: Callable[[], None] = lambda: None
        self._previous: Any = None

    def __enter__(self) -> _Interrupt:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C stays a KeyboardInterrupt
            self._previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, _signum: int, _frame: Any) -> None:
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

    def patiently(self, read: Callable[[], Any]) -> Any:
        """`read()`, retried while the ledger cannot be reached (Ctrl-C stops)."""
        from mirrago.backoff import keep_trying
        from mirrago.ledger import LedgerUnavailableError

        def failed(error: BaseException) -> None:
            self.update(getattr(error, "reason", str(error)))

        result = keep_trying(read, retry_on=(LedgerUnavailableError,), on_failure=failed)
        self.update(None)
        return result


def _say(line: str) -> None:
    """A line on stderr that does not break a progress bar."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def run_batch(args: argparse.Namespace) -> int:
    from mirrago.services import open_services

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
        _print_migration_notes(services.ledger)
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
        counts = notice.patiently(lambda: services.ledger.counts(batch.id))
        summary = notice.patiently(
            lambda: write_results(services.ledger, table, batch.id, out_dir)
        )
        return _batch_outcome(services, counts, table, summary, out_dir, args, interrupt.requested)


def _batch_for(ledger: Any, table: CsvBatch, out_dir: Path, name: str, backend: str) -> Any:
    """The batch of this out-dir: the one recorded before (resuming), or a new one."""
    from mirrago.backend import describe_backend

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
    services: Any,
    batch_id: int,
    timeout: float | None,
    interrupt: _Interrupt,
    notice: _LedgerNotice,
) -> None:
    from tqdm import tqdm

    from mirrago.ledger import JobState, LedgerUnavailableError

    runner = services.runner
    total = sum(notice.patiently(lambda: services.ledger.counts(batch_id)).values())
    deadline = None if timeout is None else time.monotonic() + timeout
    bar = tqdm(total=total, unit="row", file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
    done = [0]

    def show(counts: dict[JobState, int]) -> None:
        finished = sum(counts[state] for state in JobState if state.is_final)
        bar.update(finished - done[0])
        done[0] = finished
        in_progress = counts[JobState.SUBMITTING] + counts[JobState.SUBMITTED]
        failed = counts[JobState.FAILED] + counts[JobState.UNCERTAIN]
        bar.set_postfix_str(
            f"done={counts[JobState.COMPLETED]} failed={failed} in progress={in_progress}",
            refresh=False,
        )

    try:
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
    finally:
        bar.close()


def _batch_outcome(
    services: Any,
    counts: dict[Any, int],
    table: CsvBatch,
    summary: dict[str, int],
    out_dir: Path,
    args: argparse.Namespace,
    interrupted: bool,
) -> int:
    from mirrago.ledger import JobState

    parts = ", ".join(f"{count} {status}" for status, count in sorted(summary.items()))
    written = out_dir / "results.csv"
    print(f"{len(table.rows)} rows: {parts}. Results: {written}", file=sys.stderr)
    print(written)
    active = counts[JobState.QUEUED] + counts[JobState.SUBMITTING] + counts[JobState.SUBMITTED]
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


def follow_batch(args: argparse.Namespace) -> int:
    """`mirrago batch --follow ID`: 0 when every row completed, 1 when some did not."""
    from mirrago.batchfollow import follow
    from mirrago.ledger import JobState, Ledger

    ledger = Ledger.open(load_settings())
    try:
        counts = follow(ledger, args.follow, args.timeout)
    finally:
        ledger.close()
    if counts is None:
        raise UsageError(f"there is no batch {args.follow} in this ledger")
    summary = ", ".join(f"{n} {state.value}" for state, n in counts.items() if n)
    print(f"Batch {args.follow}: {summary or 'no rows'}", file=sys.stderr)
    active = counts[JobState.QUEUED] + counts[JobState.SUBMITTING] + counts[JobState.SUBMITTED]
    if active:
        raise MirragoError(f"{active} rows still in progress after {args.timeout:g} s")
    return EXIT_OK if counts[JobState.COMPLETED] == sum(counts.values()) else EXIT_JOB_FAILED


# --------------------------------------------------------------------------- usage


def run_usage(args: argparse.Namespace) -> int:
    from mirrago import usage
    from mirrago.backend import describe_backend
    from mirrago.ledger import Ledger

    period = usage.Period.last(args.days)
    ledger = Ledger.open(load_settings())
    try:
        _print_migration_notes(ledger)
        if args.csv:
            sys.stdout.write(usage.statement_csv(ledger, period))
            return EXIT_OK
        found = usage.overview(ledger, period)
        unfinished = ledger.unfinished_by_backend()
    finally:
        ledger.close()
    print(f"Credits, last {args.days} days ({period.label()}, UTC; ledger: {ledger.display_url})")
    for key, count in sorted(unfinished.items()):
        print(f"  {count} unfinished job(s) for {describe_backend(key)}")
    if found.metrics.balance is None:
        print("No credit readings yet: they are recorded with every submission.")
        return EXIT_OK
    for label, value in usage.metric_lines(found.metrics):
        print(f"  {label:<21}{value}")
    if found.metrics.warning:
        print(f"  Warning: fewer than {usage.WARN_DAYS} days of credits left at this rate.")
    print()
    print("Statement by day (opening - spent - outside + top-ups = closing)")
    print(f"  {'day':<12}{'opening':>10}{'spent':>9}{'outside':>9}{'top-ups':>9}{'closing':>10}")
    for day in found.statement:
        print(f"  {day.day.isoformat():<12}{day.opening:>10,}{day.spent:>9,}{day.outside:>9,}"
              f"{day.topups:>9,}{day.closing:>10,}")  # fmt: skip
    return EXIT_OK


# --------------------------------------------------------------------------- export (issue 10)


def run_export(args: argparse.Namespace) -> int:
    from mirrago import export
    from mirrago.ledger import Ledger

    wanted = [
        (kind, value)
        for kind, value in (("results", args.csv), ("images", args.zip), ("report", args.html))
        if value is not None
    ]
    if not wanted:
        raise UsageError("mirrago export: choose at least one of --csv, --zip, --html")
    ledger = Ledger.open(load_settings())
    try:
        batch = _find_batch(ledger, args.batch)
        for kind, value in wanted:
            target = Path(value or export.default_name(batch, kind))
            _check_out_path(target)
            temporary = target.with_name(f".{target.name}.tmp")
            try:
                if kind == "results":
                    temporary.write_bytes(export.results_csv(ledger, batch.id))
                elif kind == "images":
                    export.write_zip(ledger, batch.id, temporary)
                else:
                    with temporary.open("w", encoding="utf-8") as handle:
                        export.write_html(ledger, batch.id, handle)
                temporary.replace(target)
            finally:
                temporary.unlink(missing_ok=True)
            print(f"{kind}: {target}")
    finally:
        ledger.close()
    return EXIT_OK


def _find_batch(ledger: Any, text: str) -> Any:
    batch = ledger.batch(int(text)) if text.strip().isdigit() else None
    if batch is None:
        batch = next((b for b in ledger.batches() if b.name == text), None)
    if batch is None:
        raise UsageError(
            f"mirrago export: no batch {text!r} in the ledger; give a batch id or name "
            "(`mirrago usage` shows the ledger in use)"
        )
    return batch
# --------------------------------------------------------------------------- assign-backend


def run_assign_backend(args: argparse.Namespace) -> int:
    """Give the unfinished rows of an unknown server (from before the ledger recorded servers)
    to the configured one, so its runners submit or poll them."""
    from mirrago.backend import describe_backend, start_backend
    from mirrago.ledger import Ledger

    settings = load_settings()
    running = start_backend(settings)  # the key needs the backend's address and client id
    try:
        ledger = Ledger.open(settings)
        try:
            _print_migration_notes(ledger)
            # Named batch: the user moves its rows from whichever server they were for.
            moved = ledger.assign_backend(
                running.backend.key,
                batch_id=args.batch,
                **({"from_backend": None} if args.batch else {}),
            )
        finally:
            ledger.close()
    finally:
        running.stop()
    where = describe_backend(running.backend.key)
    print(f"{moved} unfinished job(s) now wait for {where}.")
    return EXIT_OK


def _print_migration_notes(ledger: Any) -> None:
    for note in ledger.migration_notes:
        print(f"mirrago: {note}", file=sys.stderr)


# --------------------------------------------------------------------------- sandbox, main


def run_sandbox(args: argparse.Namespace) -> int:
    from mirrago.sandbox.server import SandboxConfig, serve

    config = SandboxConfig(
        latency=args.latency,
        workers=args.workers,
        rate_limit=args.rate_limit,
        submit_fail_rate=args.fail_rate,
        read_fail_rate=args.read_fail_rate,
        job_fail_rate=args.job_fail_rate,
        token_ttl=args.token_ttl,
        starting_credits=args.credits,
        seed=args.seed,
        strict_reference=args.strict_reference,
        allow_private_urls=args.allow_private_urls,
    )
    if args.print_openapi:
        from mirrago.sandbox.server import openapi_json

        print(openapi_json(config))
        return EXIT_OK
    try:
        serve(config, args.host, args.port)
    except OSError as error:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port} ({error.strerror or error}); "
            "choose another with --port"
        ) from None
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "sandbox": run_sandbox,
    "try-on": run_try_on,
    "batch": run_batch,
    "usage": run_usage,
    "export": run_export,  # issue 10
    "assign-backend": run_assign_backend,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
        return COMMANDS[args.command](args)
    except (UsageError, BatchFileError) as error:
        return _fail(error, EXIT_BAD_INPUT, debug)
    except (BadRequestError, ImageError) as error:
        return _fail(error, EXIT_BAD_INPUT, debug)
    except MirragoError as error:
        return _fail(error, EXIT_SERVICE, debug)
    except KeyboardInterrupt:
        print("mirrago: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:
        text = f"{error.strerror or error}: {error.filename or ''}".rstrip(": ")
        return _fail(error, EXIT_SERVICE, debug, text)
    except Exception as error:  # a last guard: no traceback reaches a user without --debug
        text = (
            f"unexpected error ({type(error).__name__}): {error}. "
            "Run again with --debug for details."
        )
        return _fail(error, EXIT_SERVICE, debug, text)


def _fail(error: BaseException, code: int, debug: bool, text: str | None = None) -> int:
    """Print one line (and the traceback with --debug); return the exit code."""
    if debug:
        import traceback

        traceback.print_exception(error)
    text = " ".join((text or str(error)).split())
    if not text.startswith("mirrago"):
        text = f"mirrago: {text}"
    print(text, file=sys.stderr)
    return code
