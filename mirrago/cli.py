"""The `mirrago` command line: `sandbox` and `try-on`.

Exit codes: 0 completed, 1 the job failed, 2 bad input or usage (nothing submitted),
3 authentication, network or server error, 130 interrupted. Every error is one line on
stderr; a traceback only with `--debug`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

from mirrago import __version__
from mirrago.backend import open_backend
from mirrago.config import load_settings
from mirrago.models import (
    BadRequestError,
    ImageError,
    Job,
    JobStatus,
    MirragoError,
)

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_SERVICE = 3
EXIT_INTERRUPTED = 130

BACKGROUNDS = ("original", "white", "studio")


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
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug logs")

    sandbox = commands.add_parser("sandbox", parents=[common],
                                  help="run the local Mirrago sandbox server")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8700)
    sandbox.add_argument("--latency", type=_latency, default=(2.0, 5.0),
                         help="seconds per job: 2 (fixed) or 2-5 (random); default 2-5")
    sandbox.add_argument("--workers", type=int, default=4, help="jobs rendered at once")
    sandbox.add_argument("--rate-limit", type=_positive_float, default=None,
                         help="submits per second per client (default: unlimited)")
    sandbox.add_argument("--fail-rate", type=_rate, default=0.0,
                         help="share of submits answered with a plain 500 (no job created)")
    sandbox.add_argument("--read-fail-rate", type=_rate, default=0.0,
                         help="share of job reads answered with a 500")
    sandbox.add_argument("--job-fail-rate", type=_rate, default=0.0,
                         help="share of jobs that end failed (credit refunded)")
    sandbox.add_argument("--token-ttl", type=_positive_float, default=3600.0)
    sandbox.add_argument("--credits", type=int, default=1000, help="starting balance")
    sandbox.add_argument("--seed", type=int, default=None)
    sandbox.add_argument("--strict-reference", action="store_true",
                         help="answer exactly like the published reference (completedc, "
                              "'500 Rate Limit', result_url null)")

    try_on = commands.add_parser("try-on", parents=[common],
                                 help="dress one person in one garment")
    try_on.add_argument("target", metavar="TARGET", help="person photo: a file or an http(s) URL")
    try_on.add_argument("garment", metavar="GARMENT", help="garment photo: a file or an URL")
    try_on.add_argument("--background", choices=BACKGROUNDS, default=None)
    try_on.add_argument("--username", default=None)
    try_on.add_argument("--out", type=Path, default=None,
                        help="where to write the result (default tryon-<job_id>.<ext>)")
    try_on.add_argument("--timeout", type=_positive_float, default=120.0,
                        help="seconds to wait for the result (default 120)")
    try_on.add_argument("--json", action="store_true", help="print the final job as JSON")
    return parser


def is_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


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


def _result_extension(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    return "jpg"


def _progress_printer(started: float) -> Callable[[Job], None]:
    last: list[str] = []

    def show(job: Job) -> None:
        status = job.raw_status or job.status.value
        if last and last[-1] == status:
            return
        last.append(status)
        print(f"  {status} ({time.monotonic() - started:.1f} s)", file=sys.stderr)

    return show


def run_try_on(args: argparse.Namespace) -> int:
    from mirrago.client import MirragoClient

    target = read_image_argument(args.target, role="person", name="TARGET")
    garment = read_image_argument(args.garment, role="garment", name="GARMENT")
    _check_out_path(args.out)

    settings = load_settings()
    with open_backend(settings) as backend, MirragoClient.from_backend(backend) as client:
        print(f"Using {backend.label} at {backend.base_url}", file=sys.stderr)
        started = time.monotonic()
        try:
            submission = client.generate(
                target, garment, background=args.background, username=args.username
            )
        except BadRequestError as error:
            raise UsageError(str(error)) from None
        print(
            f"Submitted job {submission.job_id} (credits before: {submission.credits_before})",
            file=sys.stderr,
        )
        job = client.wait(
            submission.job_id, timeout=args.timeout, on_update=_progress_printer(started)
        )
        if job.status is not JobStatus.COMPLETED or not job.result_url:
            reason = job.error_message or "the server gave no reason"
            print(f"mirrago: job {job.job_id} failed: {reason}", file=sys.stderr)
            if args.json:
                print(json.dumps(_job_json(job), indent=2))
            return EXIT_JOB_FAILED
        try:
            image = client.download(job.result_url)
        except (ImageError, BadRequestError) as error:
            # The input was fine; the result could not be fetched: a service problem (exit 3).
            raise MirragoError(
                f"Job {job.job_id} completed, but its result could not be downloaded: {error}"
            ) from error

    out = args.out or Path(f"tryon-{job.job_id}.{_result_extension(image)}")
    out.write_bytes(image)
    print(f"Completed in {time.monotonic() - started:.1f} s", file=sys.stderr)
    if args.json:
        print(json.dumps({**_job_json(job), "result_file": str(out)}, indent=2))
    else:
        print(out)
    return EXIT_OK


def _job_json(job: Job) -> dict[str, object]:
    data = asdict(job)
    data["status"] = job.status.value
    data["created_at"] = job.created_at.isoformat() if job.created_at else None
    return data


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
    )
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
    except UsageError as error:
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
        text = (f"unexpected error ({type(error).__name__}): {error}. "
                "Run again with --debug for details.")
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
