"""Reading an .xlsx batch table safely: bounded before openpyxl parses it.

A workbook is a zip: what it declares it unpacks to, and the rows of a sheet that does not say
its size, are checked before openpyxl reads a byte, so a zip bomb or a sheet of a million rows
is refused in a moment with one plain message. openpyxl (and defusedxml, which keeps XML
entities out) are loaded only when a workbook is read.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

MB = 1024 * 1024
Record = tuple[int, list[str]]  # a line's number and its cells
SAVE_AS_CSV = "in Excel use Save As > CSV UTF-8 (Comma delimited)"
# A workbook is a zip: what it declares it unpacks to is checked before openpyxl reads a byte
# (Python's zipfile stops at the declared size). Spreadsheet XML compresses 10 to 350 times;
# a part compressed 500 times or more over 1 MB is a zip bomb.
XLSX_MAX_UNPACKED = 50 * MB
XLSX_MAX_PART = 20 * MB  # the sheet, the shared strings (openpyxl holds them all in memory)
XLSX_MAX_PARTS = 1_000
XLSX_MAX_RATIO = 500
XLSX_MAX_COLUMNS = 64  # read from the first sheet; a batch uses four


def _zip_problem(archive: zipfile.ZipFile) -> str | None:
    """Why a workbook must not be unpacked (a zip bomb, or far more than a table), from what its
    zip declares, before anything is decompressed."""
    redo = f"open it in your spreadsheet program and save it again, or {SAVE_AS_CSV}"
    parts = archive.infolist()
    if len(parts) > XLSX_MAX_PARTS:
        return (
            f"the workbook holds more than {XLSX_MAX_PARTS:,} parts, far more than a table "
            f"needs: {redo}"
        )
    if sum(part.file_size for part in parts) > XLSX_MAX_UNPACKED:
        return (
            f"the workbook unpacks to more than {XLSX_MAX_UNPACKED // MB} MB, far more than a "
            f"batch table needs: split it into smaller files, or {SAVE_AS_CSV}"
        )
    for part in parts:
        if part.file_size > XLSX_MAX_PART:
            return (
                f"a part of the workbook (its sheet or its text) unpacks to more than "
                f"{XLSX_MAX_PART // MB} MB, far more than a batch table needs: split it into "
                f"smaller files, or {SAVE_AS_CSV}"
            )
        if part.file_size > MB and part.file_size > XLSX_MAX_RATIO * max(part.compress_size, 1):
            return (
                f"the workbook unpacks to more than {XLSX_MAX_RATIO} times its size, which "
                f"spreadsheet programs do not write: {redo}"
            )
    return None


def _row_count_problem(archive: zipfile.ZipFile, limits: Any) -> str | None:
    """Too many rows in a sheet that does not say its size, counted in its XML as it unpacks:
    openpyxl parses such a sheet whole when it opens the workbook, seconds for a 60 KB file of
    200,000 rows. Sheets that say their size (spreadsheet programs write it first) are left
    to the row cap while reading the first sheet."""
    if limits.records is None:
        return None
    for part in archive.infolist():
        if part.file_size < 6 * limits.records:  # a row takes at least "<row/>"
            continue
        with archive.open(part) as stream:
            chunk = stream.read(MB)
            if _says_its_size(chunk):
                continue
            rows, tail = 0, b""
            while chunk:
                text = tail + chunk
                rows += text.count(b"<row") + text.count(b":row")  # <x:row> too
                tail = text[-4:]  # a tag cut by the chunk is counted with the next one
                rows -= tail.count(b"<row") + tail.count(b":row")
                if rows > limits.records:
                    return limits.too_many_sheet_rows()
                chunk = stream.read(MB)
    return None


def _says_its_size(head: bytes) -> bool:
    """A sheet's <dimension> before its rows: openpyxl reads no further to size the sheet
    (and a part with neither is not a sheet: counting its rows costs a moment)."""
    rows = head.find(b"sheetData")
    return head.find(b"dimension ", 0, len(head) if rows == -1 else rows) != -1


def xlsx_records(
    data: bytes, limits: Any, bounded: Callable[[Iterable[Record]], list | str]
) -> list | str:
    """The first sheet's rows as text cells (read through `bounded`, which stops at the
    limits), or the problem with the file. `limits` is the batch file's row limits."""
    not_a_workbook = (
        f"the file is not an Excel workbook (.xlsx): save it as .xlsx, or {SAVE_AS_CSV}"
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            problem = _zip_problem(archive) or _row_count_problem(archive, limits)
    except Exception:  # noqa: BLE001 - not a zip, a damaged or an encrypted part
        return not_a_workbook
    if problem:
        return problem
    from defusedxml import DefusedXmlException
    from openpyxl import load_workbook

    entities = (
        "the workbook holds XML entity definitions, which spreadsheet programs do not write: "
        f"open it in your spreadsheet program and save it again, or {SAVE_AS_CSV}"
    )
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable workbook is one plain message
        return entities if _caused_by(error, DefusedXmlException) else not_a_workbook
    try:
        if not workbook.worksheets:
            return not_a_workbook
        # max_col: a cell far to the right would otherwise widen every row to it.
        rows = workbook.worksheets[0].iter_rows(values_only=True, max_col=XLSX_MAX_COLUMNS)
        records = bounded(_sheet_records(rows))
    except Exception as error:  # noqa: BLE001 - a damaged sheet is one plain message
        if _caused_by(error, DefusedXmlException):
            return entities
        return (
            "the workbook's first sheet cannot be read (the file may be damaged): open it in "
            f"your spreadsheet program and save it again, or {SAVE_AS_CSV}"
        )
    finally:
        workbook.close()
    return records


def _caused_by(error: BaseException | None, kind: type[BaseException]) -> bool:
    """openpyxl wraps the XML parser's error in its own."""
    while error is not None:
        if isinstance(error, kind):
            return True
        error = error.__cause__ or error.__context__
    return False


def _sheet_records(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[int, list[str]]]:
    for number, row in enumerate(rows, start=1):
        cells = ["" if value is None else str(value) for value in row]
        while cells and not cells[-1].strip():
            cells.pop()
        yield number, cells
