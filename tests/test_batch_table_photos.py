"""Photos uploaded beside a batch table (a ZIP, or the photos themselves): bounded reading,
plain refusals, and how table cells find them by file name; a cell never names any other file."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from mirrago import batchtable
from mirrago.batchtable import SERVER_PATH_REFUSED, Uploads, file_name, import_photos
from mirrago.datadir import save_input
from mirrago.images import PreparedImage

GARMENT = "http://127.0.0.1:9/samples/garments/b.png"


def jpeg(colour: tuple[int, int, int] = (200, 120, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 400), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def zipped(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def save(tmp_path: Path):
    def store(prepared: PreparedImage) -> Path:
        return save_input(prepared, tmp_path / "data")

    return store


def test_a_zip_bomb_member_is_refused_without_unpacking_it(save) -> None:
    bomb = zipped({"huge.jpg": b"\0" * (30 * 1024 * 1024), "ok.jpg": jpeg()})
    assert len(bomb) < 100_000
    started = time.perf_counter()
    photos = import_photos([("photos.zip", bomb)], save)
    assert time.perf_counter() - started < 5  # a deadline, not a speed target
    assert "larger than 25 MB unpacked" in photos.refused["huge.jpg"]
    assert list(photos.stored) == ["ok.jpg"]


def test_a_zip_listing_too_many_files_is_refused_before_it_is_opened(save) -> None:
    crowded = zipped({f"f{i}.txt": b"" for i in range(batchtable.MAX_ZIP_ENTRIES + 1)})
    photos = import_photos([("crowded.zip", crowded)], save)
    assert not photos.stored and "lists more than 1,000 files" in photos.notes[0]


def test_only_so_many_photos_are_read_from_one_zip(save, monkeypatch) -> None:
    monkeypatch.setattr(batchtable, "MAX_PHOTOS", 2)  # the bound, not its size, is tested
    three = zipped({f"p{i}.jpg": jpeg((i * 40, 0, 0)) for i in range(3)})
    photos = import_photos([("three.zip", three)], save)
    assert sorted(photos.stored) == ["p0.jpg", "p1.jpg"]
    assert any("Only the first 2 photos of 'three.zip' were read" in n for n in photos.notes)


def test_a_damaged_zip_and_a_damaged_member_get_plain_messages(save) -> None:
    assert "is not a ZIP archive" in import_photos([("x.zip", b"not a zip")], save).notes[0]
    data = bytearray(zipped({"a.jpg": jpeg()}, compression=zipfile.ZIP_STORED))
    data[60:80] = b"\xff" * 20  # inside the stored photo: its checksum no longer matches
    photos = import_photos([("damaged.zip", bytes(data))], save)
    assert "cannot be read from the ZIP" in photos.refused["a.jpg"]


def test_photos_chosen_directly_are_stored_and_a_non_image_is_refused(save) -> None:
    photos = import_photos([("Alice.JPG", jpeg()), ("fake.png", b"hello, world")], save)
    assert Path(photos.stored["alice.jpg"]).is_file()
    assert "not an image we can read" in photos.refused["fake.png"]
    assert any("'fake.png' not stored" in note for note in photos.notes)


def test_two_photos_of_one_name_keep_the_first(save) -> None:
    photos = import_photos(
        [("a.zip", zipped({"x/p.jpg": jpeg(), "y/P.jpg": jpeg((0, 0, 9))}))], save
    )
    assert list(photos.stored) == ["p.jpg"]
    assert any("Two photos are named 'p.jpg'" in note for note in photos.notes)


def test_a_cell_finds_an_uploaded_photo_by_its_file_name_only(save, tmp_path: Path) -> None:
    uploads = Uploads().with_photos(import_photos([("alice.jpg", jpeg())], save))
    stored = uploads.stored("alice.jpg")
    assert stored and uploads.stored(r"C:\Users\pm\shoot\ALICE.jpg") == stored
    assert uploads.stored("https://example.com/alice.jpg") is None
    other = tmp_path / "data" / "inputs" / "someone-elses.jpg"  # stored, not by this session
    other.write_bytes(jpeg())
    checked = batchtable.check_table(
        [
            batchtable.clean_row(
                {"target_image_url": "shoot/alice.jpg", "garment_image_url": GARMENT}
            ),
            batchtable.clean_row({"target_image_url": str(other), "garment_image_url": GARMENT}),
        ],
        uploads,
    )
    assert checked[0].job is not None and checked[0].job.target == stored
    assert checked[1].job is None
    assert checked[1].problem == f"target_image_url: {SERVER_PATH_REFUSED}"


def test_a_photo_uploaded_again_replaces_the_refused_one(save) -> None:
    first = Uploads().with_photos(import_photos([("a.jpg", b"not a photo")], save))
    assert first.refusal("a.jpg") and not first.stored("a.jpg")
    second = first.with_photos(import_photos([("a.jpg", jpeg())], save))
    assert second.stored("a.jpg") and second.refusal("a.jpg") is None


def test_file_names_are_the_last_part_of_any_path() -> None:
    assert file_name("alice.jpg") == file_name("/tmp/x/Alice.JPG") == "alice.jpg"
    assert file_name(r"C:\shoot\alice.jpg") == file_name(" shoot/alice.jpg ") == "alice.jpg"
