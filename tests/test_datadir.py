"""The data dir's files: uploads kept once by their content, writes that a reader never sees
half done, and files leaving: removed when no job uses them, purged when old."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from mirrago.datadir import (
    atomic_target,
    copy_atomically,
    file_version,
    input_path,
    purge_inputs,
    remove_stored,
    save_input,
    write_atomically,
)
from mirrago.images import prepare_image


def _photo(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 160), colour).save(out, "JPEG")
    return out.getvalue()


def test_an_upload_is_kept_once_under_inputs_by_its_content(tmp_path: Path) -> None:
    first = prepare_image(_photo((200, 30, 30)), role="person")
    path = save_input(first, tmp_path)
    assert path == input_path(first, tmp_path) and path.parent == tmp_path / "inputs"
    assert path.read_bytes() == first.data
    assert save_input(first, tmp_path) == path  # the same bytes: the same file, not a copy
    other = save_input(prepare_image(_photo((30, 200, 30)), role="person"), tmp_path)
    assert other != path and sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, other.name]
    )


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    write_atomically(target, "old")
    with pytest.raises(RuntimeError), atomic_target(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("the disk filled up")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_writers_at_once_leave_one_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    texts = [str(n) * 200_000 for n in range(8)]
    threads = [threading.Thread(target=write_atomically, args=(target, t)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_text() in texts
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_a_copy_arrives_whole(tmp_path: Path) -> None:
    source = tmp_path / "result.png"
    source.write_bytes(b"\x89PNG" + b"x" * 1000)
    copy_atomically(source, tmp_path / "copy.png")
    assert (tmp_path / "copy.png").read_bytes() == source.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.png", "result.png"]


def test_retention_removes_only_input_photos_older_than_the_limit(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    old, new = inputs / "old.jpg", inputs / "new.jpg"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    ten_days_ago = time.time() - 10 * 86_400
    os.utime(old, (ten_days_ago, ten_days_ago))
    assert purge_inputs(tmp_path, 7) == 1
    assert not old.exists() and new.exists()


def test_a_stored_file_no_job_uses_is_removed_and_nothing_outside_the_data_dir(
    tmp_path: Path,
) -> None:
    data_dir, elsewhere = tmp_path / "data", tmp_path / "my-photos"
    (data_dir / "results").mkdir(parents=True)
    elsewhere.mkdir()
    ours, shared, theirs = (
        data_dir / "results" / "a.png",
        data_dir / "results" / "b.png",
        elsewhere / "me.jpg",
    )
    for path in (ours, shared, theirs):
        path.write_bytes(b"x")
    escape = str(data_dir / ".." / "my-photos" / "me.jpg")

    assert remove_stored(str(ours), data_dir, in_use=lambda value: False)
    assert not remove_stored(str(shared), data_dir, in_use=lambda value: value == str(shared))
    assert not remove_stored(str(theirs), data_dir)
    assert not remove_stored(escape, data_dir)
    assert not remove_stored("https://images.example/p.jpg", data_dir)
    assert not remove_stored(str(ours), data_dir)  # already gone: nothing to say
    assert not ours.exists() and shared.exists() and theirs.exists()


def test_a_file_version_is_its_modification_time_and_none_without_a_file(tmp_path: Path) -> None:
    stored = tmp_path / "a.jpg"
    stored.write_bytes(b"x")
    os.utime(stored, (1_000_000, 2_000_000))
    assert file_version(stored) == 2_000_000 and file_version(str(stored)) == 2_000_000
    assert file_version(tmp_path / "gone.jpg") is None
    assert file_version(None) is None and file_version("") is None
