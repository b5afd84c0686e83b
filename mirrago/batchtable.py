"""The Batch page's table of pairs, without the UI: checking rows (the same checker as
`mirrago batch`, in batchfile.py), importing CSV/Excel files and the photos they name, sample
rows and the Combine grid.

A table is a list of plain dicts with the `COLUMNS` keys (text cells, "" when empty). The page
never reads a file a cell names: its only files are the photos uploaded in the session
(`Uploads`), stored in the data dir; any other path gets `SERVER_PATH_REFUSED`.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from itertools import product
from pathlib import Path

from mirrago import samples
from mirrago.batchfile import (
    BACKGROUNDS,
    IMAGE_COLUMNS,
    OPTIONAL_COLUMNS,
    PAGE_MAX_ROWS,
    SERVER_PATH_REFUSED,
    check_cells,
    check_duplicates,
    is_url,
    read_batch_bytes,
    shorten,
)
from mirrago.errors import ImageError
from mirrago.images import DEFAULT_MAX_BYTES, PreparedImage, prepare_image
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


PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".avif", ".heic", ".heif")
MAX_PHOTOS = 200  # photos taken from one upload (a ZIP or the photos themselves)
MAX_ZIP_ENTRIES = 1_000  # entries a ZIP may list, folders and other files included
MAX_ZIP_DIRECTORY = 1024 * 1024  # bytes of a ZIP's table of contents, checked before it is read
MAX_ZIP_BYTES = 300 * 1024 * 1024  # bytes decompressed from one ZIP, all photos together
_ZIP_END = b"PK\x05\x06"  # the end-of-central-directory record


def file_name(value: str) -> str:
    """The last part of a cell naming a file, lower-case: how a cell finds an uploaded photo
    (`alice.jpg`, `shoot/Alice.JPG` and `C:\\shoot\\alice.jpg` all name alice.jpg)."""
    return value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].strip().lower()


@dataclass(frozen=True)
class Uploads:
    """The photos uploaded in this session: the only files a page table may name.

    `paths` are the stored files (Combine writes their paths into cells); `names` are the
    photos uploaded beside the CSV, found by file name; `refused` says why a photo uploaded
    beside the CSV was not stored (a pixel bomb, not an image), so its rows can say so."""

    paths: frozenset[str] = frozenset()
    names: frozenset[tuple[str, str]] = frozenset()  # (file name, stored path)
    refused: frozenset[tuple[str, str]] = frozenset()  # (file name, why not stored)

    @cached_property
    def _by_name(self) -> dict[str, str]:
        return dict(self.names)

    @cached_property
    def _refused(self) -> dict[str, str]:
        return dict(self.refused)

    def stored(self, value: str) -> str | None:
        """The stored file a cell names, or None (a link, or no such upload)."""
        if not value or "://" in value:
            return None
        if value in self.paths:
            return value
        return self._by_name.get(file_name(value))

    def refusal(self, value: str) -> str | None:
        """Why the photo a cell names was not stored, when it was uploaded and refused."""
        if not value or "://" in value or self.stored(value):
            return None
        return self._refused.get(file_name(value))

    def with_paths(self, paths: Iterable[str]) -> Uploads:
        return Uploads(self.paths | frozenset(paths), self.names, self.refused)

    def with_photos(self, photos: Photos) -> Uploads:
        """These uploads and `photos`: a photo uploaded again under a name replaces the
        earlier one (stored or refused)."""
        names = {**self._by_name, **photos.stored}
        refused = {
            name: why
            for name, why in {**self._refused, **photos.refused}.items()
            if name not in photos.stored
        }
        for name in photos.refused:
            names.pop(name, None)
        return Uploads(
            self.paths | frozenset(photos.stored.values()),
            frozenset(names.items()),
            frozenset(refused.items()),
        )


def check_table(
    table: Table, uploads: Uploads = Uploads(), link_problems: dict[str, str | None] | None = None
) -> list[RowCheck]:
    """Check every row like `mirrago batch` does (missing values, not an http(s) URL, unknown
    background, duplicate pair), plus the Check links findings. A cell names a file only
    through `uploads`; any other path gets one message, and nothing at it is opened."""
    checked = []
    for number, values in enumerate(table, start=1):
        cells = dict(values)
        refusals = {}
        for name in IMAGE_COLUMNS:
            value = (cells.get(name) or "").strip()
            stored, why = uploads.stored(value), uploads.refusal(value)
            if stored:
                cells[name] = stored
            elif why:
                refusals[f"{name}: {SERVER_PATH_REFUSED}"] = (
                    f"{name}: {shorten(file_name(value))!r} cannot be used: {why}"
                )
        row = check_cells(cells, Path(), accepted_files=uploads.paths)
        row.problems = [refusals.get(problem, problem) for problem in row.problems]
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


def import_file(name: str, data: bytes) -> Imported:
    """Read an uploaded CSV or .xlsx (the `mirrago batch` columns; unknown columns ignored,
    a header-less two-column file accepted) into table rows. Bad rows come in too, so the
    table can show them with their reasons; a file over the page's limits (`PAGE_MAX_ROWS`
    rows, `MAX_IMPORT_BYTES`) is refused whole, before it is all read."""
    # The file's name is given only for its type: no path in the rows is looked up here
    # (check_table checks the rows).
    table = read_batch_bytes(data, Path(Path(name).name), check=False, max_rows=PAGE_MAX_ROWS)
    if not table.header:
        return Imported([], table.problems, table.notes)
    names = [cell.strip().lower() for cell in table.header]
    rows = []
    for row in table.rows:
        cells = dict(zip(names, row.values, strict=False))
        rows.append(clean_row(cells))
    header_problems = [p for p in table.problems if p.startswith("line 1:")] if not rows else []
    return Imported(rows, header_problems or table.problems, table.notes)


@dataclass(frozen=True)
class Photos:
    """Photos uploaded beside a CSV, stored (by lower-case file name) or refused (why)."""

    stored: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def import_photos(
    files: Iterable[tuple[str, bytes]], save: Callable[[PreparedImage], Path]
) -> Photos:
    """Store the photos in `files` (photos, or ZIPs of photos): each is decoded within
    mirrago.images' limits (a pixel bomb is refused from its header) and prepared like any
    upload, then `save`d. ZIPs are bounded before reading: entries, each photo's size and the
    total decompressed. Other files are skipped."""
    stored: dict[str, str] = {}
    refused: dict[str, str] = {}
    notes: list[str] = []
    for upload, data in files:
        members = (
            _zip_photos(upload, data, notes)
            if upload.lower().endswith(".zip")
            else [(upload, data)]
        )
        for member, body in members:
            name = file_name(member)
            if name in stored or name in refused:
                notes.append(f"Two photos are named {shorten(name)!r}: the first is used.")
                continue
            try:
                if isinstance(body, str):
                    raise ImageError(body)
                stored[name] = str(save(prepare_image(body, role="garment")))
            except ImageError as error:  # the runner prepares again, for the row's role
                refused[name] = str(error)
    if stored:
        listed = ", ".join(sorted(stored)[:5]) + (", …" if len(stored) > 5 else "")
        notes.insert(
            0,
            f"{len(stored)} photo{'s' * (len(stored) != 1)} stored: rows that name "
            f"{listed} use {'them' if len(stored) != 1 else 'it'}.",
        )
    notes += [f"{shorten(name)!r} not stored: {why}" for name, why in list(refused.items())[:10]]
    if len(refused) > 10:
        notes.append(f"… and {len(refused) - 10} more photos not stored.")
    return Photos(stored, refused, notes)


def _zip_photos(upload: str, data: bytes, notes: list[str]) -> Iterator[tuple[str, bytes | str]]:
    """The photos in a ZIP, each with its bytes or why they cannot be read; problems with the
    ZIP itself go to `notes`."""
    label = repr(shorten(Path(upload).name))
    end = data.rfind(_ZIP_END, max(0, len(data) - 65_557))
    if end < 0 or end + 22 > len(data):
        notes.append(f"{label} is not a ZIP archive: zip the photos (or choose them directly).")
        return
    entries, directory = struct.unpack_from("<HI", data, end + 10)
    if entries > MAX_ZIP_ENTRIES or directory > MAX_ZIP_DIRECTORY:
        notes.append(
            f"{label} lists more than {MAX_ZIP_ENTRIES:,} files: zip at most "
            f"{MAX_PHOTOS} photos at a time."
        )
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        notes.append(f"{label} cannot be opened as a ZIP archive: zip the photos again.")
        return
    photos, total, others = 0, 0, 0
    with archive:
        for info in archive.infolist()[:MAX_ZIP_ENTRIES]:
            name = file_name(info.filename)
            if info.is_dir() or "__macosx/" in info.filename.lower() or name.startswith("."):
                continue  # folders, and the copies macOS adds to a ZIP
            if not name.endswith(PHOTO_SUFFIXES):
                others += 1
                continue
            photos += 1
            if photos > MAX_PHOTOS or total + info.file_size > MAX_ZIP_BYTES:
                notes.append(
                    f"Only the first {photos - 1} photos of {label} were read (at "
                    f"most {MAX_PHOTOS} photos, {MAX_ZIP_BYTES // 2**20} MB in all): "
                    "upload the rest in another ZIP."
                )
                break
            body = _zip_member(archive, info)
            total += len(body) if isinstance(body, bytes) else 0
            yield info.filename, body
    if others:
        notes.append(
            f"Skipped {others} file{'s' * (others != 1)} in {label} that "
            f"{'are not photos' if others != 1 else 'is not a photo'}."
        )


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | str:
    """A member's bytes, read no further than one photo's limit, or why not."""
    too_large = f"larger than {DEFAULT_MAX_BYTES // 2**20} MB unpacked; use a smaller photo."
    if info.file_size > DEFAULT_MAX_BYTES:
        return too_large
    try:
        with archive.open(info) as member:
            body = member.read(DEFAULT_MAX_BYTES + 1)
    except (
        zipfile.BadZipFile,
        RuntimeError,
        NotImplementedError,
        OSError,
        EOFError,
        zlib.error,
        ValueError,
    ):  # damaged, password-protected or an unusual compression
        return "cannot be read from the ZIP (damaged or password-protected); zip it again."
    return too_large if len(body) > DEFAULT_MAX_BYTES else body


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
    pairs = (
        [
            (persons[(start + shift) % len(persons)], garments[start % len(garments)])
            for shift in range(len(persons))
            for start in range(len(garments))
        ]
        if persons and garments
        else []
    )
    fresh = [pair for pair in dict.fromkeys(pairs) if pair not in taken][:count]
    return [
        clean_row({"target_image_url": person, "garment_image_url": garment})
        for person, garment in fresh
    ]


__all__ = [
    "BACKGROUNDS",
    "COLUMNS",
    "PAGE_MAX_ROWS",
    "SERVER_PATH_REFUSED",
    "Imported",
    "Photos",
    "RowCheck",
    "Table",
    "Uploads",
    "check_table",
    "clean_row",
    "combine",
    "file_name",
    "import_file",
    "import_photos",
    "is_blank",
    "links_to_check",
    "sample_rows",
    "sample_url",
    "split_lines",
]
