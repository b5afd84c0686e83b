"""The `mirrago` command line's parser: every command, option and help text, and the checks of
option values (a bad value is one line and exit 2, like every usage error)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mirrago import __version__
from mirrago.batchfile import BACKGROUNDS
from mirrago.errors import UsageError

# What `add_subparsers` returns: argparse gives it no public name.
Commands = argparse._SubParsersAction


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
    """The parser of `mirrago` and every command (each added by its own function below)."""
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
    _add_sandbox(commands, common)
    _add_try_on(commands, common)
    _add_batch(commands, common)
    _add_export(commands, common)
    _add_deck(commands, common)
    _add_usage(commands, common)
    _add_assign_backend(commands, common)
    _add_triage(commands, common)
    return parser


def _add_sandbox(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`mirrago sandbox`: the local server, its latency and its faults."""
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


def _add_try_on(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`mirrago try-on TARGET GARMENT`."""
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


def _add_batch(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`mirrago batch INPUT.csv` and `mirrago batch --follow BATCH_ID`."""
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


def _add_export(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`mirrago export BATCH --csv/--zip/--html`."""
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


def _add_deck(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`mirrago deck list` and `mirrago deck export DECK --html [FILE]`."""
    deck = commands.add_parser(
        "deck",
        parents=[common],
        help="Stage's decks: list them, or export one as a slideshow HTML file",
    )
    actions = deck.add_subparsers(dest="deck_action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    actions.add_parser("list", parents=[common], help="every deck: id, slides, name")
    export = actions.add_parser(
        "export",
        parents=[common],
        help="write a deck as one self-contained slideshow HTML file",
        description="Write the deck (by id, or by name) as one HTML file with its pictures "
        "embedded: it plays offline with the same keys as the Stage page (→/← next and "
        "previous, Space before/after, N notes). Nothing is fetched from the API.",
    )
    export.add_argument("deck", metavar="DECK", help="deck id or name")
    export.add_argument(
        "--html",
        nargs="?",
        const="",
        default=None,
        metavar="FILE",
        help="the slideshow file (default: deck-<id>-<name>.html in the current folder)",
    )


def _add_usage(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`mirrago usage`."""
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


def _add_assign_backend(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`mirrago assign-backend`."""
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


def _add_triage(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`mirrago triage BATCH [--all]`."""
    triage = commands.add_parser(
        "triage",
        parents=[common],
        help="score a batch's results again with the current quality checks",
        description="Check a batch's completed results against their own person and garment "
        "photos (by id, or by name: the newest of that name): the results not checked yet or "
        "checked by an older version of the checks, or every one with --all. Nothing is "
        "fetched: a result whose photos are links elsewhere is left 'not checked'.",
    )
    triage.add_argument("batch", metavar="BATCH", help="batch id or name")
    triage.add_argument("--all", action="store_true", help="check every completed result again")
