"""The `mirrago` command line: `sandbox`, `try-on`, `batch`, `usage`, `export` and
`assign-backend`, one module each; the options in parser.py (batch files: batchfile.py).

`try-on` and `batch` go through the runner and the ledger like every job (one path for every
job). Exit codes: 0 completed, 1 a job failed (or is uncertain), 2 bad input or usage (nothing
submitted), 3 authentication, network or server error, 130 interrupted. Every error is one
line on stderr (a CSV's problems: one line each); a traceback only with `--debug`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from mirrago.cli.common import EXIT_BAD_INPUT, fail
from mirrago.cli.parser import build_parser
from mirrago.errors import UsageError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        return fail(error, EXIT_BAD_INPUT, debug)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    # Only once a command is chosen: `mirrago --help` loads neither the service errors (and
    # with them requests) nor any command's modules, and answers at once.
    from mirrago.cli.dispatch import run_command

    return run_command(args, debug)
