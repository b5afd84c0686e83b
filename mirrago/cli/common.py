"""What every `mirrago` command shares: the exit codes, the one-line
failure message, and the ledger's migration notes."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from mirrago.errors import UsageError

if TYPE_CHECKING:  # the parser imports this module: `mirrago --help` must not load the ledger
    from mirrago.ledger import BatchRecord, Ledger

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_SERVICE = 3
EXIT_INTERRUPTED = 130


def fail(error: BaseException, code: int, debug: bool, text: str | None = None) -> int:
    """Print one line (and the traceback with --debug); return the exit code."""
    if debug:
        traceback.print_exception(error)
    text = " ".join((text or str(error)).split())
    if not text.startswith("mirrago"):
        text = f"mirrago: {text}"
    print(text, file=sys.stderr)
    return code


def check_out_path(out: Path | None) -> None:
    if out is not None and not out.parent.resolve().is_dir():
        raise UsageError(f"--out {str(out)!r}: the folder {str(out.parent)!r} does not exist")


def print_migration_notes(ledger: Ledger) -> None:
    for note in ledger.migration_notes:
        print(f"mirrago: {note}", file=sys.stderr)


def find_batch(ledger: Ledger, text: str, command: str) -> BatchRecord:
    """The batch `text` names: its id, or its name (the newest of that name)."""
    batch = ledger.batch(int(text)) if text.strip().isdigit() else None
    if batch is None:
        batch = next((b for b in ledger.batches() if b.name == text), None)
    if batch is None:
        raise UsageError(
            f"mirrago {command}: no batch {text[:80]!r} in the ledger; give a batch id or name "
            "(`mirrago usage` shows the ledger in use)"
        )
    return batch
