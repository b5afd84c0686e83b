"""`mirrago try-on TARGET GARMENT`: one job through the runner and the ledger, its progress on
stderr, the result copied to `--out` (or `tryon-<job_id>.<ext>`)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from mirrago.batchfile import is_url, iso
from mirrago.cli.common import (
    EXIT_JOB_FAILED,
    EXIT_OK,
    check_out_path,
    print_migration_notes,
)
from mirrago.errors import (
    AuthenticationError,
    ImageError,
    InsufficientCreditsError,
    MirragoError,
    UsageError,
)
from mirrago.images import prepare_image
from mirrago.ledger import JobInput, JobRecord, JobState, Origin
from mirrago.runner import Runner
from mirrago.services import Services, open_services


def run(args: argparse.Namespace) -> int:
    # Checked before anything starts: bad input exits 2 with nothing submitted.
    read_image_argument(args.target, role="person", name="TARGET")
    read_image_argument(args.garment, role="garment", name="GARMENT")
    check_out_path(args.out)
    job_input = JobInput(
        _stored_input(args.target),
        _stored_input(args.garment),
        background=args.background,
        username=args.username,
    )

    with open_services(start_runner=False, batch_ids=(), max_transient_failures=3) as services:
        backend, runner, ledger = services.backend, services.runner, services.ledger
        print(f"Using {backend.label} at {backend.base_url}", file=sys.stderr)
        print_migration_notes(ledger)
        started = time.monotonic()
        [row] = runner.enqueue([job_input], name="try-on", source=Origin.CLI_TRY_ON)
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


def read_image_argument(text: str, *, role: str, name: str) -> str | bytes:
    """A URL is passed through; a local file is read and prepared. Raises UsageError."""
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


def _stored_input(text: str) -> str:
    """How an image argument is recorded in the ledger: a URL as is, a file by absolute path
    (the runner may run in another working directory)."""
    return text if is_url(text) else str(Path(text).resolve())


def _follow(
    services: Services, batch_id: int, row_id: int, started: float, timeout: float
) -> JobRecord:
    """Wait for the one row, showing its progress on stderr; returns the row as it ends."""
    ledger, runner = services.ledger, services.runner
    deadline = started + timeout
    announced, last_label = False, ""
    while True:
        row = ledger.job(row_id)
        assert row is not None  # enqueued above
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


def _try_on_failure(row: JobRecord, runner: Runner, args: argparse.Namespace) -> int:
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


def _row_json(row: JobRecord) -> dict[str, object]:
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
