"""Batch files: read and check a batch CSV completely, and write its results.csv.

Every problem in an input file is collected with its line number before anything runs;
results.csv accounts for every input row, in input order.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
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

    header_line, header = records[0]
    header_problems = _header_problems(header)
    problems = list(header_problems)
    names = [name.strip().lower() for name in header]
    rows: list[CsvRow] = []
    for line, record in records[1:]:
        if not any(cell.strip() for cell in record):
            continue  # a blank line is not a row
        row = CsvRow(index=len(rows), line=line, values=record)
        if not header_problems:  # rows cannot be read without their columns
            _check_row(row, names, path.parent)
        rows.append(row)
        problems += [f"line {row.line}: {problem}" for problem in row.problems]
    if not rows and not problems:
        problems.append("line 2: the file has a header but no rows to run")
    return CsvBatch(path, header, rows, problems)


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


def _check_row(row: CsvRow, names: list[str], base: Path) -> None:
    from mirrago.ledger import JobInput

    if len(row.values) > len(names):
        row.problems.append(
            f"{len(row.values)} values but the header has {len(names)} columns "
            "(a value with a comma needs double quotes)"
        )
        return
    cells = {name: value.strip() for name, value in zip(names, row.values, strict=False)}
    images = [_check_image_cell(name, cells.get(name, ""), base, row) for name in IMAGE_COLUMNS]
    background = cells.get("background", "") or None
    if background and background.lower() not in BACKGROUNDS + KEEP_BACKGROUND:
        row.problems.append(
            f"background {background!r} is not one of {', '.join(BACKGROUNDS)} (or empty)"
        )
    if not row.problems:
        target, garment = images
        username = cells.get("username", "") or None
        row.job = JobInput(str(target), str(garment), background and background.lower(), username)


def _check_image_cell(name: str, value: str, base: Path, row: CsvRow) -> str | None:
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
    temporary = out_dir / ".results.csv.tmp"
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
        shutil.copyfile(source, target)
    return str(target.relative_to(out_dir))
