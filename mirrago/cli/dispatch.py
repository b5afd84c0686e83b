"""Runs the chosen `mirrago` command and turns whatever it raises into one line on stderr and
an exit code (a traceback only with `--debug`)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from mirrago.batchfile import BatchFileError
from mirrago.cli.common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_SERVICE, fail
from mirrago.errors import BadRequestError, ImageError, MirragoError, UsageError

Command = Callable[[argparse.Namespace], int]

# Each command's module in this package, whose `run(args)` carries it out.
COMMANDS: dict[str, str] = {
    "sandbox": "sandbox",
    "try-on": "try_on",
    "batch": "batch",
    "usage": "usage",
    "export": "export",
    "deck": "deck",
    "assign-backend": "assign_backend",
    "triage": "triage",
}


def command(name: str) -> Command:
    """The `run` of command `name`. Its module is imported only now: each command loads what
    it needs and no more (the sandbox's web server is needed by `mirrago sandbox` alone)."""
    run: Command = importlib.import_module(f"mirrago.cli.{COMMANDS[name]}").run
    return run


def run_command(args: argparse.Namespace, debug: bool) -> int:
    """Run `args.command`; its exit code, or the one its error calls for."""
    try:
        return command(args.command)(args)
    except (UsageError, BatchFileError) as error:
        return fail(error, EXIT_BAD_INPUT, debug)
    except (BadRequestError, ImageError) as error:
        return fail(error, EXIT_BAD_INPUT, debug)
    except MirragoError as error:
        return fail(error, EXIT_SERVICE, debug)
    except KeyboardInterrupt:
        print("mirrago: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:
        text = f"{error.strerror or error}: {error.filename or ''}".rstrip(": ")
        return fail(error, EXIT_SERVICE, debug, text)
    except Exception as error:  # a last guard: no traceback reaches a user without --debug
        text = (
            f"unexpected error ({type(error).__name__}): {error}. "
            "Run again with --debug for details."
        )
        return fail(error, EXIT_SERVICE, debug, text)
