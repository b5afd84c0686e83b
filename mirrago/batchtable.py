"""The Batch page's table of pairs, without the UI: checking rows (the same checker as
`mirrago batch`, in batchfile.py), importing CSV/Excel files, sample rows and the Combine grid.

A table is a list of plain dicts with the `COLUMNS` keys (text cells, "" when empty).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import product
from pathlib import Path

from mirrago import samples
from mirrago.batchfile import (
    BACKGROUNDS,
    IMAGE_COLUMNS,
    OPTIONAL_COLUMNS,
    check_cells,
    check_duplicates,
    is_url,
    read_batch_bytes,
)
from mirrago.ledger import JobInput

COLUMNS = IMAGE_COLUMNS + OPTIONAL_COLUMNS
Table = list[dict[str, str]]


@dataclass(frozen=True)
class RowCheck:
    """One table row, checked: the job it asks for, or why it will be skipped."""

    number: int  # 1-based, as the table shows it
    job: JobInput | None
    problem: str | None


def clean_row(values: dict[str, object]) -> dict[str, str]:
    """A row with exactly the table's columns, as stripped text (None/NaN become "")."""
    row = {}
    for name in COLUMNS:
        value = values.get(name)
        text = "" if value is None or value != value else str(value)  # NaN != NaN
        row[name] = text.strip()
    return row


def is_blank(row: dict[str, str]) -> bool:
    return not any(row.get(name) for name in COLUMNS)


def check_table(
    table: Table, base: Path, link_problems: dict[str, str | None] | None = None
) -> list[RowCheck]:
    """Check every row like `mirrago batch` does (missing values, not an http(s) URL or an
    image file, unknown background, duplicate pair), plus the Check links findings."""
    checked = []
    for number, values in enumerate(table, start=1):
        row = check_cells(values, base)
        row.line = number
        checked.append(row)
    check_duplicates(checked)
    links = link_problems or {}
    found = []
    for row in checked:
        problems = list(row.problems)
        job = row.job
        if job is not None:
            for name, value in zip(IMAGE_COLUMNS, (job.target, job.garment), strict=True):
                if links.get(value):
                    problems.append(f"{name}: {links[value]}")
            if problems:
                job = None
        found.append(RowCheck(row.line, job, "; ".join(problems) or None))
    return found


def links_to_check(table: Table) -> list[str]:
    """The distinct http(s) URLs of the image columns, in table order."""
    urls = (row.get(name, "") for row in table for name in IMAGE_COLUMNS)
    return list(dict.fromkeys(url for url in urls if is_url(url)))


@dataclass(frozen=True)
class Imported:
    """A file read into table rows, with what to tell the user about it."""

    rows: Table
    problems: list[str]  # the file's problems (rows with problems are still imported)
    notes: list[str]


def import_file(name: str, data: bytes, base: Path) -> Imported:
    """Read an uploaded CSV or .xlsx (the `mirrago batch` columns; unknown columns ignored,
    a header-less two-column file accepted) into table rows. Bad rows come in too, so the
    table can show them with their reasons."""
    table = read_batch_bytes(data, base / Path(name).name, check=False)  # rows: check_table
    if not table.header:
        return Imported([], table.problems, table.notes)
    names = [cell.strip().lower() for cell in table.header]
    rows = []
    for row in table.rows:
        cells = dict(zip(names, row.values, strict=False))
        rows.append(clean_row(cells))
    header_problems = [p for p in table.problems if p.startswith("line 1:")] if not rows else []
    return Imported(rows, header_problems or table.problems, table.notes)


def combine(
    persons: Iterable[str], garments: Iterable[str], background: str = "", username: str = ""
) -> Table:
    """Every person with every garment: the grid a product manager compares."""
    chosen_persons = [p.strip() for p in persons if p and p.strip()]
    chosen_garments = [g.strip() for g in garments if g and g.strip()]
    return [
        clean_row(
            {
                "target_image_url": person,
                "garment_image_url": garment,
                "background": background,
                "username": username,
            }
        )
        for person, garment in product(chosen_persons, chosen_garments)
    ]


def split_lines(text: str) -> list[str]:
    """A pasted list: one item a line (commas and tabs also separate)."""
    items = text.replace("\t", "\n").replace(",", "\n").splitlines()
    return [item.strip() for item in items if item.strip()]


def sample_url(base_url: str, sample: samples.Sample) -> str:
    """The sandbox serves the shipped samples under /samples/."""
    return f"{base_url.rstrip('/')}/samples/{sample.relative_path}"


def sample_rows(base_url: str, existing: Table = (), count: int = 4) -> Table:
    """`count` person × garment rows from the sandbox's samples that are not in `existing`
    yet (so pressing the button again adds new pairs, not duplicates)."""
    persons = [sample_url(base_url, s) for s in samples.persons()]
    garments = [sample_url(base_url, s) for s in samples.garments()]
    taken = {(row.get("target_image_url"), row.get("garment_image_url")) for row in existing}
    # Diagonals first: the first rows pair each person with a different garment.
    pairs = [
        (persons[(start + shift) % len(persons)], garments[start % len(garments)])
        for shift in range(len(persons))
        for start in range(len(garments))
    ] if persons and garments else []
    fresh = [pair for pair in dict.fromkeys(pairs) if pair not in taken][:count]
    return [
        clean_row({"target_image_url": person, "garment_image_url": garment})
        for person, garment in fresh
    ]


__all__ = [
    "BACKGROUNDS",
    "COLUMNS",
    "Imported",
    "RowCheck",
    "Table",
    "check_table",
    "clean_row",
    "combine",
    "import_file",
    "is_blank",
    "links_to_check",
    "sample_rows",
    "sample_url",
    "split_lines",
]
