"""The data dir's files: where an uploaded photo is kept, where results and their thumbnails
go, the one way a file is written so that no reader ever sees half of it (another process, a
crash, two writers at once), and the ways a file leaves: removing one no job uses any more,
and purging old input photos (MIRRAGO_RETENTION_DAYS)."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the images module loads Pillow: not needed to write a file
    from mirrago.images import PreparedImage

log = logging.getLogger(__name__)


def input_path(prepared: PreparedImage, data_dir: Path) -> Path:
    """Where prepared bytes are stored: `data_dir/inputs/<sha256>.<ext>` (same bytes, same
    file)."""
    digest = hashlib.sha256(prepared.data).hexdigest()
    return data_dir / "inputs" / f"{digest}.{prepared.ext.lstrip('.')}"


def save_input(prepared: PreparedImage, data_dir: Path) -> Path:
    """Write prepared bytes to their `input_path` (once: same bytes, same file)."""
    path = input_path(prepared, data_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, prepared.data)
    return path


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; it becomes `path` in one step when the block
    ends without an error, and is removed either way. Its name is unique, so two processes
    writing the same file never write into each other's."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes | str) -> None:
    """`path` holds `data` (text as UTF-8), or what it held before: never part of it."""
    with atomic_target(path) as temporary:
        if isinstance(data, str):
            temporary.write_text(data, encoding="utf-8")
        else:
            temporary.write_bytes(data)


def copy_atomically(source: Path, target: Path) -> None:
    """`target` becomes a copy of `source` in one step."""
    with atomic_target(target) as temporary:
        shutil.copyfile(source, temporary)


def file_version(path: str | Path | None) -> float | None:
    """A file's version for caches kept per file (its modification time); None when there is
    no such file to read."""
    if not path:
        return None
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return None


def results_dir(data_dir: Path) -> Path:
    """Where finished try-ons are stored, one file per job."""
    return data_dir / "results"


def thumbs_dir(data_dir: Path) -> Path:
    """Where their thumbnails (at most 320 px, JPEG) are stored."""
    return data_dir / "thumbs"


def safe_name(job_id: str) -> str:
    """A server's job id as a file name (no separators, no dot files of its choosing)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in job_id)[:128] or "job"


def store_result(data_dir: Path, job_id: str, data: bytes) -> tuple[str, str | None, str | None]:
    """Write a job's result to `results/<job id>.<ext>` and its thumbnail to `thumbs/`: the
    result's path, the thumbnail's (None when it could not be made) and a note saying why."""
    results = results_dir(data_dir)
    results.mkdir(parents=True, exist_ok=True)
    from mirrago.images import result_extension

    ext = result_extension(data) or "bin"
    result = results / f"{safe_name(job_id)}.{ext}"
    write_atomically(result, data)
    try:
        from mirrago.images import make_thumbnail

        thumbs = thumbs_dir(data_dir)
        thumb = thumbs / f"{safe_name(job_id)}.jpg"
        thumbs.mkdir(parents=True, exist_ok=True)
        write_atomically(thumb, make_thumbnail(data, max_side=320))
    except Exception as error:  # noqa: BLE001 - the result itself is safe; note it
        return str(result), None, f"The thumbnail could not be made: {error}"
    return str(result), str(thumb), None


def remove_stored(
    value: str | None, data_dir: Path, in_use: Callable[[str], bool] | None = None
) -> bool:
    """Remove a file a deleted job named, if it is ours: inside the data dir (never a link, a
    shipped sample or a photo of the user's own a CLI batch named) and not `in_use` by anything
    else (the ledger's `uses_file`). True when a file was removed."""
    if not value or "://" in value:
        return False
    path = Path(value)
    try:
        inside = path.resolve().is_relative_to(data_dir.resolve()) and path.is_file()
    except OSError:
        return False
    if not inside or (in_use is not None and in_use(value)):
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as error:
        log.warning("could not remove the stored file %s: %s", path.name, error.strerror)
        return False
    return True


def purge_inputs(data_dir: Path, days: float) -> int:
    """MIRRAGO_RETENTION_DAYS: remove stored input photos older than `days`; returns how many.
    Their try-ons stay (the previews say the photo is not kept)."""
    cutoff = time.time() - days * 86_400
    removed = 0
    for path in (data_dir / "inputs").glob("*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            log.warning("could not remove an old input photo %s", path.name)
    return removed
