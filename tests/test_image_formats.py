"""iPhone HEIC/HEIF and AVIF photos are converted like any other photo."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from mirrago.images import prepare_image


def _photo(fmt: str) -> bytes:
    image = Image.new("RGB", (640, 960), (150, 110, 90))
    image.paste((230, 200, 170), (200, 100, 440, 400))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_heic_and_avif_photos_become_jpegs_ready_to_upload(fmt: str) -> None:
    prepared = prepare_image(_photo(fmt), role="person")
    assert prepared.mime == "image/jpeg"
    assert (prepared.width, prepared.height) == (640, 960)
    with Image.open(io.BytesIO(prepared.data)) as decoded:
        assert decoded.format == "JPEG"
