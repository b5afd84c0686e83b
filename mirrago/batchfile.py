"""Batch files: read and check a batch table (CSV, Excel) completely, and write results.csv.

Every problem in an input file is collected with its line number before anything runs;
results.csv accounts for every input row, in input order.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mirrago.ledger import Ledger

BACKGROUNDS = ("original", "white", "studio")


class BatchFileError(ValueError):
    """The input file cannot be read at all (missing, a folder, unreadable)."""

IMAGE_COLUMNS = ("target_image_url", "garment_image_url")
OPTIONAL_COLUMNS = ("background", "username")
RESULT_COLUMNS = (
    "job_id",
    "status",
    "error",
    "result_url",
    "result_file",
    "credits_before",
    "submitted_at",
    "finished_at",
)
KEEP_BACKGROUND = ("false",)
# The Batch page's one answer for a cell naming a file that was not uploaded (whether or not
# anything exists at that path on the server).
SERVER_PATH_REFUSED = (
    "a file path on the server is not accepted here: upload the photo (Combine, or a ZIP of "
    "images beside the CSV) or use an http(s) link"
)


@dataclass
class CsvRow:
    """One data row of the input: its values as given, and what it asks for (None: invalid)."""

    index: int  # 0-based among the data rows
    line: int  # where it starts in the file (the header is line 1)
    values: list[str]
    job: Any = None  # a JobInput when the row is valid
    problems: list[str] = field(default_factory=list)


@dataclass
class CsvBatch:
    path: Path
    header: list[str]
    rows: list[CsvRow]
    problems: list[str]  # every problem, "line N: …", in file order
    notes: list[str] = field(default_factory=list)  # what was read differently (no header…)

    @property
    def valid(self) -> list[CsvRow]:
        return [row for row in self.rows if row.job is not None]


def read_batch_csv(path: Path) -> CsvBatch:
    """Read and check a batch CSV completely: every problem is collected, none is raised
    (except an unreadable file)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BatchFileError(f"INPUT.csv {str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise BatchFileError(f"INPUT.csv {str(path)!r} is a folder, not a CSV file") from None
    except OSError as error:
        raise BatchFileError(f"INPUT.csv {str(path)!r} cannot be read ({error.strerror})") from None
    return read_batch_bytes(data, path)


def read_batch_bytes(data: bytes, path: Path, *, check: bool = True) -> CsvBatch:
    """Check a batch file's bytes: CSV, or Excel (.xlsx) when `path` says so. Relative image
    paths are looked up next to `path`. Every problem is collected, none is raised. With
    `check=False` only the file and its header are checked (the caller checks the rows)."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        records = _xlsx_records(data)
        if isinstance(records, str):
            return CsvBatch(path, [], [], [records])
        return check_records(records, path, check=check)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start : error.start + 1].hex()
        problem = (
            f"line {line}: the file is not UTF-8 text (byte 0x{byte}); save it as UTF-8 "
            "(in Excel: Save As > CSV UTF-8)"
        )
        return CsvBatch(path, [], [], [problem])
    if not text.strip():
        problem = "line 1: the file is empty; it needs a header line: " + ",".join(IMAGE_COLUMNS)
        return CsvBatch(path, [], [], [problem])

    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for record in reader:
            records.append((start, record))
            start = reader.line_num + 1
    except csv.Error as error:
        return CsvBatch(path, [], [], [f"line {reader.line_num}: {error}"])
    return check_records(records, path, check=check)


def _xlsx_records(data: bytes) -> list[tuple[int, list[str]]] | str:
    """The first sheet's rows as text cells, or the problem with the file."""
    try:
        from openpyxl import load_workbook

        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - any unreadable workbook is one plain message
        return "the file is not an Excel workbook (.xlsx); save it as .xlsx or CSV UTF-8"
    try:
        sheet = workbook.worksheets[0]
        records = []
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = ["" if value is None else str(value) for value in row]
            while cells and not cells[-1].strip():
                cells.pop()
            records.append((number, cells))
    finally:
        workbook.close()
    if not any(cells for _, cells in records):
        return "line 1: the sheet is empty; it needs a header line: " + ",".join(IMAGE_COLUMNS)
    return records


def _headerless(header: list[str]) -> bool:
    """A file with no header line: two cells that are images (links or file names), and no
    known column name."""
    names = [name.strip().lower() for name in header]
    if len(names) != 2 or set(names) & set(IMAGE_COLUMNS + OPTIONAL_COLUMNS):
        return False
    return all(is_url(cell.strip()) or _looks_like_file(cell) for cell in header)


def _looks_like_file(cell: str) -> bool:
    return Path(cell.strip()).suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")


def check_records(
    records: list[tuple[int, list[str]]], path: Path, *, check: bool = True
) -> CsvBatch:
    """Check a table given as (line number, cells) records; the first is the header, unless
    the file is a header-less two-column table of images."""
    if not records:
        problem = "line 1: the file is empty; it needs a header line: " + ",".join(IMAGE_COLUMNS)
        return CsvBatch(path, [], [], [problem])
    notes: list[str] = []
    header = records[0][1]
    if _headerless(header):
        header, data = list(IMAGE_COLUMNS), records
        notes.append(
            "No header line: the first column is read as the person, the second as the garment."
        )
    else:
        data = records[1:]
    header_problems = _header_problems(header)
    problems = list(header_problems)
    names = [name.strip().lower() for name in header]
    unknown = [name for name in names if name and name not in IMAGE_COLUMNS + OPTIONAL_COLUMNS]
    if unknown and not header_problems:
        listed = ", ".join(repr(name) for name in unknown)
        notes.append(f"Ignored column{'s' * (len(unknown) > 1)} {listed}: not used by a batch.")
    rows: list[CsvRow] = []
    for line, record in data:
        if not any(cell.strip() for cell in record):
            continue  # a blank line is not a row
        row = CsvRow(index=len(rows), line=line, values=record)
        if check and not header_problems:  # rows cannot be read without their columns
            _check_row(row, names, path.parent)
        rows.append(row)
        problems += [f"line {row.line}: {problem}" for problem in row.problems]
    if not rows and not problems:
        problems.append("line 2: the file has a header but no rows to run")
    return CsvBatch(path, header, rows, problems, notes)


def _check_duplicate(
    row: CsvRow, seen: dict[tuple[str, str, str | None], CsvRow], unit: str = "line"
) -> None:
    """The same person, garment and background twice would spend a credit on the same image
    (a table rule of the Batch page; `mirrago batch` runs repeats on purpose)."""
    if row.job is None:
        return
    pair = (row.job.target, row.job.garment, row.job.background)
    first = seen.setdefault(pair, row)
    if first is not row:
        row.problems.append(f"the same pair as {unit} {first.line} (a duplicate)")
        row.job = None


def check_cells(
    cells: dict[str, str], base: Path, *, accepted_files: Collection[str] | None = None
) -> CsvRow:
    """Check one row given by column name (the Batch page's table); `base` resolves relative
    file names. The row's `job` is set when it is valid, else its `problems` say why.

    `accepted_files` (the page) limits local files to those paths, the user's uploads: any
    other cell that is not a URL gets `SERVER_PATH_REFUSED`, and nothing at that path is
    looked at. None (the CLI, whose user owns the machine) accepts any readable image file."""
    names = list(IMAGE_COLUMNS + OPTIONAL_COLUMNS)
    row = CsvRow(index=0, line=0, values=[str(cells.get(name) or "") for name in names])
    _check_row(row, names, base, accepted_files)
    return row


def check_duplicates(rows: list[CsvRow]) -> None:
    """Mark every repeat of an earlier valid row's pair (see `check_cells`; `line` is the
    table's row number)."""
    seen: dict[tuple[str, str, str | None], CsvRow] = {}
    for row in rows:
        _check_duplicate(row, seen, unit="row")


def _header_problems(header: list[str]) -> list[str]:
    names = [name.strip().lower() for name in header]
    problems = []
    if len(header) == 1 and ";" in header[0]:
        problems.append(
            "line 1: the columns are separated by semicolons; use commas (CSV: comma-separated)"
        )
        return problems
    seen: set[str] = set()
    for name in names:
        if name in seen and name:
            problems.append(f"line 1: column {name!r} appears twice")
        seen.add(name)
    if "" in names:
        problems.append(f"line 1: column {names.index('') + 1} has no name")
    for required in IMAGE_COLUMNS:
        if required not in names:
            found = ", ".join(repr(n) for n in names if n) or "none"
            problems.append(f"line 1: missing column {required!r} (columns found: {found})")
    return problems


def _check_row(
    row: CsvRow, names: list[str], base: Path, accepted_files: Collection[str] | None = None
) -> None:
    from mirrago.ledger import JobInput

    if len(row.values) > len(names):
        row.problems.append(
            f"{len(row.values)} values but the header has {len(names)} columns "
            "(a value with a comma needs double quotes)"
        )
        return
    cells = {name: value.strip() for name, value in zip(names, row.values, strict=False)}
    images = [
        _check_image_cell(name, cells.get(name, ""), base, row, accepted_files)
        for name in IMAGE_COLUMNS
    ]
    background = cells.get("background", "") or None
    if background and background.lower() not in BACKGROUNDS + KEEP_BACKGROUND:
        row.problems.append(
            f"background {background!r} is not one of {', '.join(BACKGROUNDS)} (or empty)"
        )
    if not row.problems:
        target, garment = images
        username = cells.get("username", "") or None
        row.job = JobInput(str(target), str(garment), background and background.lower(), username)


def _check_image_cell(
    name: str, value: str, base: Path, row: CsvRow, accepted_files: Collection[str] | None = None
) -> str | None:
    """The value to record for an image cell (a URL, or a file's absolute path), or None
    with the problem added to the row."""
    from mirrago.images import sniff_mime

    if not value:
        row.problems.append(f"{name} is empty")
        return None
    if "://" in value or value.lower().startswith(("http:", "https:")):
        if not is_url(value):
            row.problems.append(f"{name} {_short(value)} is not an http(s) URL")
            return None
        return value
    if accepted_files is not None and value not in accepted_files:
        # Before any look at the path: the answer must not tell which server files exist.
        row.problems.append(f"{name}: {SERVER_PATH_REFUSED}")
        return None
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [base / path, Path.cwd() / path]
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        row.problems.append(f"{name} {_short(value)}: no such file")
        return None
    if found.is_dir():
        row.problems.append(f"{name} {_short(value)} is a folder, not an image file")
        return None
    try:
        with found.open("rb") as handle:
            head = handle.read(64 * 1024)
    except OSError as error:
        row.problems.append(f"{name} {_short(value)} cannot be read ({error.strerror})")
        return None
    if not head:
        row.problems.append(f"{name} {_short(value)} is empty (0 bytes)")
        return None
    if sniff_mime(head) is None:
        row.problems.append(f"{name} {_short(value)} is not an image (use JPG, PNG or WEBP)")
        return None
    return str(found.resolve())


def _short(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")



def is_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def write_results(ledger: Ledger, table: CsvBatch, batch_id: int, out_dir: Path) -> dict:
    """Write out_dir/results.csv: every input row, in input order, with what became of it;
    completed results are copied to out_dir/images/. Returns counts by status."""
    rows = {row.row_index: row for row in ledger.jobs(batch_id=batch_id)}
    images = out_dir / "images"
    summary: dict[str, int] = {}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*table.header, *RESULT_COLUMNS])
    width = len(table.header)
    for item in table.rows:
        values = (item.values + [""] * width)[:width]
        record = rows.get(item.index)
        if record is None:
            status = "invalid"
            result = ["", status, "; ".join(item.problems), "", "", "", "", ""]
        else:
            status = record.state.value
            result_file = _copy_result(record, images, item.index, out_dir)
            result = [
                record.job_id or "",
                status,
                record.error or "",
                record.result_url or "",
                result_file,
                "" if record.credits_before is None else str(record.credits_before),
                iso(record.submitted_at) or "",
                iso(record.finished_at) or "",
            ]
        summary[status] = summary.get(status, 0) + 1
        writer.writerow([*values, *result])
    target = out_dir / "results.csv"
    # A name of its own: two processes sharing a batch both write results.csv at the end.
    temporary = out_dir / f".results.csv.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    temporary.write_text(buffer.getvalue(), encoding="utf-8")
    os.replace(temporary, target)
    return summary


def _copy_result(record: Any, images: Path, index: int, out_dir: Path) -> str:
    if not record.result_path or not record.job_id:
        return ""
    source = Path(record.result_path)
    if not source.is_file():
        return ""
    images.mkdir(exist_ok=True)
    target = images / f"row{index + 1:04d}-{record.job_id}{source.suffix}"
    if not target.exists():
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)  # another process may be writing the same file
    return str(target.relative_to(out_dir))
