"""The data dir's files: uploads kept once by their content, and writes that a reader never sees
half done."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from PIL import Image

from mirrago.datadir import (
    atomic_target,
    copy_atomically,
    input_path,
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
