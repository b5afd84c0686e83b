"""Batch files: read and check a batch table (CSV, Excel) completely, and write results.csv.

Every problem in an input file is collected with its line number before anything runs;
results.csv accounts for every input row, in input order.

A file is bounded before it is parsed: its size, its rows (10,000 on the Batch page, 100,000
for `mirrago batch`), each cell's length, and for a workbook what it unpacks to, so a hostile
or mistaken file is refused in a moment with one plain message instead of filling the memory.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mirrago.datadir import copy_atomically, write_atomically
from mirrago.errors import BatchFileError
from mirrago.workbook import MB, SAVE_AS_CSV, xlsx_records

if TYPE_CHECKING:
    from mirrago.ledger import Ledger

BACKGROUNDS = ("original", "white", "studio")

# The Batch page shows, checks and prices its whole table on every rerun: past 10,000 rows a
# file belongs to `mirrago batch`, whose user can wait (and past 100,000, in several files).
PAGE_MAX_ROWS = 10_000
CLI_MAX_ROWS = 100_000
MAX_IMPORT_BYTES = 25 * MB  # an upload on the page: ~100,000 rows of long links
CLI_MAX_BYTES = 100 * MB
MAX_CELL_CHARS = 2_048  # a link, a file name, a background or a user name
ECHO_CHARS = 40  # what a message repeats of a user's cell (`shorten`)


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
    "suspect_score",  # the quality checks (mirrago.triage): 0…1, two decimals
    "flags",  # their flag codes, joined by ";"
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
    problems: list[str]  # every problem in file order, "line N: …" when it has a line
    notes: list[str] = field(default_factory=list)  # what was read differently (no header…)

    @property
    def valid(self) -> list[CsvRow]:
        return [row for row in self.rows if row.job is not None]


def shorten(text: str, limit: int = ECHO_CHARS) -> str:
    """`text` on one line and at most `limit` characters, cut with "…": how a message repeats
    a user's cell (a cell may be megabytes long, or hold line breaks)."""
    head = "".join(c if c.isprintable() else " " for c in text[: limit + 1])
    return head if len(text) <= limit else head[: limit - 1] + "…"


@dataclass(frozen=True)
class _Limits:
    rows: int | None
    size: int | None
    bigger: str  # what else to do with a file over a limit, after "split it into smaller files"

    @staticmethod
    def of(rows: int | None, size: int | None, cli: bool) -> _Limits:
        bigger = (
            ""
            if cli
            else ", or run it from a terminal with `mirrago batch FILE` (up to "
            f"{CLI_MAX_ROWS:,} rows and {CLI_MAX_BYTES // MB} MB)"
        )
        return _Limits(rows, size, bigger)

    def too_many_rows(self) -> str:
        return (
            f"the file has more than {self.rows:,} rows, the most a batch takes here: split it "
            f"into files of {self.rows:,} rows or fewer{self.bigger}"
        )

    def too_many_lines(self) -> str:
        return (
            f"the file has more than {self.records:,} lines, most of them empty: delete the "
            "empty lines (or rows) below the table and import it again"
        )

    def too_many_sheet_rows(self) -> str:
        return (
            f"a sheet of the workbook has more than {self.records:,} rows (empty ones included)"
            f" and a batch takes at most {self.rows:,} rows here: give the batch a workbook of "
            f"its own, split into files of {self.rows:,} rows or fewer{self.bigger}"
        )

    def too_large(self) -> str:
        return (
            f"the file is larger than {self.size // MB} MB, the most a batch file may be "
            f"here: split it into smaller files{self.bigger}"
        )

    @property
    def records(self) -> int | None:
        """Lines read at most, blank ones included: a few blank lines are harmless, a million
        (a far-away cell in a workbook) is not."""
        return None if self.rows is None else 2 * self.rows + 100


def read_batch_csv(
    path: Path, *, max_rows: int | None = CLI_MAX_ROWS, max_bytes: int | None = CLI_MAX_BYTES
) -> CsvBatch:
    """Read and check a batch file (CSV or .xlsx) completely for `mirrago batch`: every problem
    is collected, none is raised (except an unreadable file). At most `max_bytes` are read."""
    try:
        with path.open("rb") as handle:
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise BatchFileError(f"INPUT.csv {str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise BatchFileError(f"INPUT.csv {str(path)!r} is a folder, not a CSV file") from None
    except OSError as error:
        raise BatchFileError(f"INPUT.csv {str(path)!r} cannot be read ({error.strerror})") from None
    return _read(data, path, True, _Limits.of(max_rows, max_bytes, cli=True))


def read_batch_bytes(
    data: bytes,
    path: Path,
    *,
    check: bool = True,
    max_rows: int | None = PAGE_MAX_ROWS,
    max_bytes: int | None = MAX_IMPORT_BYTES,
) -> CsvBatch:
    """Check a batch file's bytes: CSV (UTF-8, or Excel's UTF-16 "Unicode text"; commas, or
    tabs), or Excel (.xlsx) when `path` says so. Relative image paths are looked up next to
    `path`. Every problem is collected, none is raised. With `check=False` only the file and
    its header are checked (the caller checks the rows).

    The defaults are the Batch page's: a file over `max_bytes`, or with more than `max_rows`
    rows (None: no limit), is refused whole with one problem saying the limit and what to do
    (reading stops at the first row over the limit)."""
    return _read(data, path, check, _Limits.of(max_rows, max_bytes, cli=False))


def _read(data: bytes, path: Path, check: bool, limits: _Limits) -> CsvBatch:
    if limits.size is not None and len(data) > limits.size:
        return CsvBatch(path, [], [], [limits.too_large()])
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        records = xlsx_records(data, limits, lambda rows: _bounded(rows, limits))
        if isinstance(records, list) and not any(cells for _, cells in records):
            records = "line 1: the sheet is empty; it needs a header line: " + ",".join(
                IMAGE_COLUMNS
            )
    else:
        records = _csv_records(data, limits)
    if isinstance(records, str):
        return CsvBatch(path, [], [], [records])
    table = check_records(records, path, check=check)
    if limits.rows is not None and len(table.rows) > limits.rows:  # a header-less file
        return CsvBatch(path, [], [], [limits.too_many_rows()])
    return table


def _bounded(records: Iterable[tuple[int, list[str]]], limits: _Limits) -> list | str:
    """The records, or why reading stopped: more rows (blank lines aside) than the header and
    `limits.rows`, or more lines than `limits.records`."""
    kept: list[tuple[int, list[str]]] = []
    filled = 0
    for record in records:
        filled += any(cell.strip() for cell in record[1])
        if limits.rows is not None and filled > limits.rows + 1:  # + the header
            return limits.too_many_rows()
        if limits.records is not None and len(kept) >= limits.records:
            return limits.too_many_lines()
        kept.append(record)
    return kept


def _decode(data: bytes) -> str:
    """The text of a CSV: UTF-8 (with or without a byte order mark), or UTF-16 with one
    (Excel's "Unicode text"). Raises UnicodeDecodeError."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def _csv_records(data: bytes, limits: _Limits) -> list | str:
    try:
        text = _decode(data)
    except UnicodeDecodeError as error:
        if error.encoding.startswith("utf-16"):
            line = data[: error.start].decode("utf-16", "replace").count("\n") + 1
            return f"line {line}: the text of the file is damaged here: {SAVE_AS_CSV}"
        line = data[: error.start].count(b"\n") + 1
        return f"line {line}: the file is not UTF-8 text: {SAVE_AS_CSV}, and use that file"
    if not text.strip():
        return "line 1: the file is empty; it needs a header line: " + ",".join(IMAGE_COLUMNS)
    header_line = text[: text.find("\n")] if "\n" in text else text
    # Excel's "Unicode text" separates with tabs; a comma in the header means a CSV.
    delimiter = "\t" if "\t" in header_line and "," not in header_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = [1]  # the line the record being read starts on (a quoted cell spans lines)

    def records() -> Iterator[tuple[int, list[str]]]:
        for record in reader:
            yield start[0], record
            start[0] = reader.line_num + 1

    try:
        return _bounded(records(), limits)
    except csv.Error as error:
        if "field larger" in str(error):
            return (
                f"line {start[0]}: a cell is too long (a cell holds at most "
                f"{MAX_CELL_CHARS:,} characters); if a cell starts with a double quote, "
                "check that it is closed: an open quote runs the lines after it into one cell"
            )
        return (
            f"line {start[0]}: this line cannot be read as CSV: check its double quotes "
            "(a value with a comma or a quote needs double quotes around it)"
        )


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
        listed = _listed(unknown)
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
            problems.append(
                f"line 1: column {_short(name)} appears twice: delete or rename one of them"
            )
        seen.add(name)
    if "" in names:
        problems.append(
            f"line 1: column {names.index('') + 1} has no name: name it, or delete the column"
        )
    for required in IMAGE_COLUMNS:
        if required not in names:
            found = _listed([n for n in names if n]) or "none"
            problems.append(
                f"line 1: missing column {required!r} (columns found: {found}): add it to the "
                "first line, which names the columns"
            )
    return problems


def _listed(names: list[str], most: int = 6) -> str:
    """Column names for a message: each cut short, and a few of them."""
    listed = ", ".join(repr(shorten(name)) for name in names[:most])
    return listed + (f" and {len(names) - most:,} more" if len(names) > most else "")


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
    for name in IMAGE_COLUMNS + OPTIONAL_COLUMNS:
        length = len(cells.get(name, ""))
        if length > MAX_CELL_CHARS:
            row.problems.append(
                f"{name} is {length:,} characters long; a cell holds at most "
                f"{MAX_CELL_CHARS:,} characters: use a shorter link, file name or text"
            )
    if row.problems:
        return
    images = [
        _check_image_cell(name, cells.get(name, ""), base, row, accepted_files)
        for name in IMAGE_COLUMNS
    ]
    background = cells.get("background", "") or None
    if background and background.lower() not in BACKGROUNDS + KEEP_BACKGROUND:
        row.problems.append(
            f"background {_short(background)} is not one of {', '.join(BACKGROUNDS)} (or empty)"
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
    return repr(shorten(value, 60))  # a link's host and most of its path


def is_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def write_results(
    ledger: Ledger, table: CsvBatch, batch_id: int, out_dir: Path, base_url: str | None = None
) -> dict:
    """Write out_dir/results.csv: every input row, in input order, with what became of it;
    completed results are copied to out_dir/images/. Returns counts by status.

    Completed rows the quality checks have not seen yet (the runner's background checker had
    not reached them) are checked first, so every completed row has its `suspect_score` and
    `flags` (`base_url`: the sandbox whose `/samples/` links are local files).

    Every cell is written as a spreadsheet shows it but never runs it (the input's cells and
    header are the user's text, the error and the result URL the server's): the same rule as
    the page's Results CSV."""
    from mirrago.export import defuse_formula
    from mirrago.triage.worker import rescore

    rescore(ledger, batch_id, base_url=base_url)
    checked = ledger.batch_triage(batch_id)
    rows = {row.row_index: row for row in ledger.jobs(batch_id=batch_id)}
    images = out_dir / "images"
    summary: dict[str, int] = {}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([defuse_formula(name) for name in [*table.header, *RESULT_COLUMNS]])
    width = len(table.header)
    for item in table.rows:
        values = (item.values + [""] * width)[:width]
        record = rows.get(item.index)
        if record is None:
            status = "invalid"
            result = ["", status, "; ".join(item.problems), "", "", "", "", "", "", ""]
        else:
            status = record.state.value
            result_file = _copy_result(record, images, item.index, out_dir)
            triage = checked.get(record.id)
            result = [
                record.job_id or "",
                status,
                record.error or "",
                record.result_url or "",
                result_file,
                "" if record.credits_before is None else str(record.credits_before),
                iso(record.submitted_at) or "",
                iso(record.finished_at) or "",
                triage.score_text if triage else "",
                triage.flags_text if triage else "",
            ]
        summary[status] = summary.get(status, 0) + 1
        writer.writerow([defuse_formula(cell) for cell in [*values, *result]])
    # Two processes sharing a batch both write results.csv at the end: each in one step.
    write_atomically(out_dir / "results.csv", buffer.getvalue())
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
        copy_atomically(source, target)  # another process may be writing the same file
    return str(target.relative_to(out_dir))
