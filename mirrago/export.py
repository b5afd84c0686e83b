"""What every file export shares: CSV cells a spreadsheet shows but never runs, CSV text as
Excel reads it, and temporary files for exports written as they are built."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse_formula(text: str) -> str:
    """`text` as a spreadsheet shows it but never runs it: a cell that starts like a formula
    gets a leading quote (also used for `mirrago batch`'s results.csv)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def to_temporary(write: Callable[[IO[bytes]], object], suffix: str) -> Path:
    """A new temporary file that `write` filled (removed again when writing fails)."""
    handle = tempfile.NamedTemporaryFile(prefix="mirrago-export-", suffix=suffix, delete=False)
    try:
        with handle:
            write(handle)
    except BaseException:
        os.unlink(handle.name)
        raise
    return Path(handle.name)


def read_and_remove(path: Path) -> bytes:
    """A temporary export's bytes, the file removed (for a download button)."""
    try:
        return path.read_bytes()
    finally:
        path.unlink(missing_ok=True)
