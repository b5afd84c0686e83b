"""Input preparation (mirrago.images): every input is built here with Pillow, nothing mocked."""

from __future__ import annotations

import io
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mirrago.errors import ImageError
from mirrago.images import (
    MAX_PIXELS,
    PreparedImage,
    describe,
    make_thumbnail,
    prepare_image,
    sniff_mime,
)

RED, BLUE, WHITE = (220, 30, 30), (30, 60, 200), (255, 255, 255)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def decoded(prepared: PreparedImage) -> Image.Image:
    image = Image.open(io.BytesIO(prepared.data))
    image.load()
    return image


def close_to(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=False))


def marked_photo(size: tuple[int, int], marker: tuple[int, int, int, int]) -> Image.Image:
    """A blue picture with a red marker rectangle (left, top, right, bottom)."""
    image = Image.new("RGB", size, BLUE)
    ImageDraw.Draw(image).rectangle(marker, fill=RED)
    return image


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header with huge dimensions and a tiny IDAT: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def refusal(data: bytes, **options: object) -> str:
    """Prepare `data`, expect an ImageError, and return its message (always one line)."""
    options.setdefault("role", "person")
    with pytest.raises(ImageError) as caught:
        prepare_image(data, **options)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message and message.endswith(".")
    assert re.search(r"\b(use|choose|crop|export|re-export)\b", message, re.IGNORECASE), message
    return message


# --------------------------------------------------------------------------- orientation


@pytest.mark.parametrize(
    ("orientation", "size", "red_at", "blue_at"),
    [
        (3, (400, 200), (390, 190), (10, 10)),  # upside down: top-left goes bottom-right
        (6, (200, 400), (190, 10), (10, 10)),  # phone held upright: top-left goes top-right
        (8, (200, 400), (10, 390), (190, 10)),  # held the other way: top-left goes bottom-left
    ],
)
def test_exif_rotated_photo_comes_out_upright(
    orientation: int,
    size: tuple[int, int],
    red_at: tuple[int, int],
    blue_at: tuple[int, int],
) -> None:
    stored = marked_photo((400, 200), (0, 0, 59, 59))  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    prepared = prepare_image(encode(stored, "JPEG", quality=95, exif=exif), role="person")

    image = decoded(prepared)
    assert (prepared.width, prepared.height) == image.size == size
    assert prepared.original_size == size and not prepared.resized
    assert close_to(image.getpixel(red_at), RED)
    assert close_to(image.getpixel(blue_at), BLUE)
    assert 0x0112 not in image.getexif()


def test_rotated_photo_shrunk_by_the_jpeg_decoder_keeps_orientation_and_proportions() -> None:
    stored = marked_photo((2000, 1000), (0, 0, 299, 299))
    exif = Image.Exif()
    exif[0x0112] = 6
    prepared = prepare_image(encode(stored, "JPEG", exif=exif), role="person", max_side=512)

    image = decoded(prepared)
    assert image.size == (256, 512) and prepared.original_size == (1000, 2000)
    assert prepared.resized
    assert close_to(image.getpixel((250, 5)), RED) and close_to(image.getpixel((5, 5)), BLUE)


# --------------------------------------------------------------------------- size


def test_twelve_megapixel_photo_is_shrunk_to_2048_px() -> None:
    photo = marked_photo((4000, 3000), (3600, 2600, 3999, 2999))
    prepared = prepare_image(encode(photo, "JPEG", quality=85), role="person")

    assert (prepared.width, prepared.height) == (2048, 1536)
    assert prepared.original_size == (4000, 3000) and prepared.resized
    assert (prepared.mime, prepared.ext) == ("image/jpeg", "jpg")
    image = decoded(prepared)
    assert image.size == (2048, 1536) and image.format == "JPEG"
    assert close_to(image.getpixel((2040, 1530)), RED)
    assert re.fullmatch(r"4000×3000 → 2048×1536 JPEG, \d+ KB", describe(prepared))


def test_small_photo_keeps_its_size_and_describe_says_so() -> None:
    prepared = prepare_image(encode(marked_photo((640, 480), (0, 0, 9, 9)), "PNG"), role="person")
    assert (prepared.width, prepared.height, prepared.resized) == (640, 480, False)
    assert re.fullmatch(r"640×480 JPEG, \d+ (KB|bytes)", describe(prepared))


def test_garment_longest_side_is_capped_too() -> None:
    garment = Image.new("RGB", (1200, 3000), (240, 240, 240))
    prepared = prepare_image(encode(garment, "PNG"), role="garment", max_side=1000)
    assert (prepared.width, prepared.height) == (400, 1000)


# --------------------------------------------------------------------------- colour modes


def test_cmyk_jpeg_becomes_rgb_with_the_right_colour() -> None:
    cmyk = Image.new("CMYK", (200, 150), (0, 255, 255, 0))  # pure red ink
    prepared = prepare_image(encode(cmyk, "JPEG", quality=95), role="person")
    image = decoded(prepared)
    assert image.mode == "RGB"
    assert close_to(image.getpixel((100, 75)), (255, 0, 0))


def wide_gamut_profile() -> bytes:
    """A minimal ICC v2 matrix/TRC profile with Display P3 primaries (as iPhones tag photos)."""

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + b"".join(struct.pack(">i", round(v * 65536)) for v in (x, y, z))

    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, 0x0233) + bytes(2)  # gamma 2.2
    tags = [
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.5151, 0.2412, -0.0011)),
        (b"gXYZ", xyz(0.2920, 0.6922, 0.0419)),
        (b"bXYZ", xyz(0.1571, 0.0666, 0.7841)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = struct.pack(">I", offset + len(body)) + bytes(4) + struct.pack(">I", 0x02100000)
    header += b"mntrRGB XYZ " + bytes(12) + b"acsp" + bytes(28) + xyz(0.9642, 1.0, 0.8249)[8:]
    return header.ljust(128, b"\0") + struct.pack(">I", len(tags)) + table + body


def test_wide_gamut_photo_is_converted_to_srgb_and_untagged() -> None:
    photo = Image.new("RGB", (120, 120), (40, 180, 60))
    plain = decoded(prepare_image(encode(photo, "PNG"), role="person"))
    tagged = decoded(
        prepare_image(encode(photo, "PNG", icc_profile=wide_gamut_profile()), role="person")
    )
    assert close_to(plain.getpixel((60, 60)), (40, 180, 60), tolerance=3)
    # The same numbers mean a more saturated green in P3 than in sRGB.
    red, green, blue = tagged.getpixel((60, 60))
    assert red < 20 and blue < 45 and green > 170
    assert "icc_profile" not in tagged.info


def test_sixteen_bit_greyscale_png_is_scaled_not_clipped() -> None:
    levels = np.full((128, 128), 1000, dtype="<u2")
    levels[:, 64:] = 60000
    deep = Image.fromarray(levels)
    assert deep.mode == "I;16"
    prepared = prepare_image(encode(deep, "PNG"), role="person")
    image = decoded(prepared)
    assert image.mode == "RGB"
    dark, light = image.getpixel((10, 64)), image.getpixel((120, 64))
    assert max(dark) <= 12
    assert 215 <= min(light) and max(light) <= 245  # 60000/65535 of white, not 255


def test_palette_garment_with_transparency_stays_a_png_with_alpha() -> None:
    garment = Image.new("P", (160, 160), 0)
    garment.putpalette([255, 255, 255, 200, 20, 40] + [0, 0, 0] * 254)
    ImageDraw.Draw(garment).rectangle((40, 40, 119, 119), fill=1)
    prepared = prepare_image(encode(garment, "PNG", transparency=0), role="garment")

    assert (prepared.mime, prepared.ext) == ("image/png", "png")
    image = decoded(prepared)
    assert image.mode == "RGBA"
    assert image.getpixel((5, 5))[3] == 0
    assert image.getpixel((80, 80)) == (200, 20, 40, 255)


def test_greyscale_garment_with_alpha_stays_a_png_with_alpha() -> None:
    garment = Image.new("LA", (100, 100), (0, 0))
    ImageDraw.Draw(garment).ellipse((20, 20, 80, 80), fill=(90, 255))
    image = decoded(prepare_image(encode(garment, "PNG"), role="garment"))
    assert image.mode == "RGBA" and image.getpixel((2, 2))[3] == 0
    assert image.getpixel((50, 50)) == (90, 90, 90, 255)


def test_opaque_garment_is_sent_as_jpeg_even_from_an_rgba_png() -> None:
    garment = Image.new("RGBA", (120, 120), (30, 140, 70, 255))
    prepared = prepare_image(encode(garment, "PNG"), role="garment")
    assert prepared.mime == "image/jpeg"
    assert close_to(decoded(prepared).getpixel((60, 60)), (30, 140, 70), tolerance=8)


def test_palette_garment_without_transparency_is_sent_as_jpeg() -> None:
    garment = Image.new("RGB", (120, 120), (30, 140, 70)).convert("P")
    assert prepare_image(encode(garment, "PNG"), role="garment").mime == "image/jpeg"


def test_transparent_person_is_flattened_onto_white_jpeg() -> None:
    person = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(person).rectangle((100, 0, 199, 199), fill=(*RED, 255))
    prepared = prepare_image(encode(person, "PNG"), role="person")

    assert prepared.mime == "image/jpeg"
    image = decoded(prepared)
    assert image.mode == "RGB"
    assert close_to(image.getpixel((20, 100)), WHITE, tolerance=6)
    assert close_to(image.getpixel((180, 100)), RED)


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("WEBP", {"quality": 90}), ("BMP", {}), ("TIFF", {}), ("PNG", {}), ("JPEG", {})],
)
def test_common_formats_are_read_and_sent_as_jpeg(fmt: str, options: dict) -> None:
    photo = marked_photo((160, 120), (0, 0, 39, 39))
    prepared = prepare_image(encode(photo, fmt, **options), role="person")
    image = decoded(prepared)
    assert image.format == "JPEG" and image.size == (160, 120)
    assert close_to(image.getpixel((10, 10)), RED) and close_to(image.getpixel((150, 110)), BLUE)


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (100, 100), RED), Image.new("RGB", (100, 100), BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    image = decoded(prepare_image(data, role="person"))
    assert close_to(image.getpixel((50, 50)), RED)


def test_metadata_is_stripped_from_the_output() -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {}  # GPS IFD pointer
    data = encode(Image.new("RGB", (100, 100), BLUE), "JPEG", exif=exif, comment=b"secret location")
    prepared = prepare_image(data, role="person")
    image = decoded(prepared)
    assert len(image.getexif()) == 0
    assert "comment" not in image.info and b"secret" not in prepared.data
    assert b"PhoneMaker" not in prepared.data


# --------------------------------------------------------------------------- refusals


def test_zero_bytes_is_refused_as_empty() -> None:
    assert "empty" in refusal(b"")


def test_text_file_is_refused_as_not_an_image() -> None:
    message = refusal(b"name,garment\nalice,shirt.png\n")
    assert "not an image" in message and "text" in message and "JPG" in message


def test_web_page_is_refused_saying_it_is_a_web_page() -> None:
    message = refusal(b"<!DOCTYPE html><html><body>Access denied</body></html>")
    assert "not an image" in message and "web page" in message


def test_heic_photo_is_refused_with_how_to_export_it() -> None:
    header = struct.pack(">I", 24) + b"ftypheic" + b"\x00" * 4 + b"mif1heic"
    message = refusal(header + b"\x00" * 200)
    assert "HEIC" in message and "JPG" in message


def test_truncated_jpeg_is_refused_as_truncated() -> None:
    noise = Image.effect_noise((256, 256), 80).convert("RGB")
    data = encode(noise, "JPEG", quality=95)
    message = refusal(data[: len(data) * 6 // 10])
    assert "cut short or damaged" in message
    assert "bytes not processed" not in message and "(" not in message  # no decoder text


def test_truncated_png_is_refused_as_truncated() -> None:
    noise = Image.effect_noise((256, 256), 80).convert("RGB")
    data = encode(noise, "PNG")
    assert "cut short or damaged" in refusal(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (30_000, 30_000),  # past Pillow's own error threshold
        (10_000, 10_000),  # in Pillow's warning band: treated as an error
        (8_000, 8_000),  # under Pillow's limits, over ours
    ],
)
def test_decompression_bomb_is_refused_before_decoding(width: int, height: int) -> None:
    assert width * height > MAX_PIXELS
    message = refusal(png_claiming(width, height))
    assert "decompression bomb" in message and "megapixel" in message


def test_pillow_bomb_warning_is_treated_as_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    # With Pillow's own limit set below ours, its warning band (limit to 2x limit) is reachable.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    message = refusal(png_claiming(1200, 1000))
    assert "decompression bomb" in message


def test_file_over_the_byte_limit_is_refused_with_both_sizes() -> None:
    message = refusal(b"\xff\xd8\xff" + b"\x00" * (int(31.2 * 1024 * 1024) - 3))
    assert "31.2 MB" in message and "limit is 25 MB" in message


def test_file_exactly_at_the_byte_limit_is_accepted() -> None:
    data = encode(Image.new("RGB", (100, 100), BLUE), "JPEG")
    assert prepare_image(data, role="person", max_bytes=len(data)).width == 100
    assert "limit" in refusal(data, max_bytes=len(data) - 1)


def test_tiny_image_is_refused_as_too_small() -> None:
    message = refusal(encode(Image.new("RGB", (10, 10), BLUE), "PNG"))
    assert "10×10" in message and "too small to be a usable photo" in message


def test_sliver_that_would_shrink_below_the_minimum_is_refused() -> None:
    message = refusal(encode(Image.new("L", (5000, 70), 128), "PNG"))
    assert "5000×70" in message and "too narrow" in message


def test_unknown_role_is_a_programming_error() -> None:
    data = encode(Image.new("RGB", (100, 100), BLUE), "PNG")
    with pytest.raises(ValueError, match="role"):
        prepare_image(data, role="shoe")  # type: ignore[arg-type]


def test_repr_does_not_dump_the_image_bytes() -> None:
    prepared = prepare_image(encode(Image.new("RGB", (100, 100), BLUE), "PNG"), role="person")
    assert "data=" not in repr(prepared) and len(repr(prepared)) < 200


# --------------------------------------------------------------------------- thumbnails


def test_thumbnail_is_a_small_jpeg() -> None:
    data = encode(marked_photo((1000, 600), (0, 0, 99, 99)), "PNG")
    thumb = Image.open(io.BytesIO(make_thumbnail(data)))
    assert thumb.format == "JPEG" and thumb.size == (320, 192)
    assert close_to(thumb.getpixel((5, 5)), RED)


def test_thumbnail_is_upright_and_flattened() -> None:
    stored = Image.new("RGBA", (400, 200), (0, 0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, "PNG", exif=exif)
    thumb = Image.open(io.BytesIO(make_thumbnail(data, max_side=100)))
    assert thumb.size == (50, 100) and thumb.mode == "RGB"
    assert close_to(thumb.getpixel((25, 50)), WHITE, tolerance=6)


def test_thumbnail_of_a_broken_file_raises_image_error() -> None:
    with pytest.raises(ImageError, match="not an image"):
        make_thumbnail(b"not an image at all")
    with pytest.raises(ImageError, match="empty"):
        make_thumbnail(b"")


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
    ],
)
def test_sniff_mime_recognises_image_formats(fmt: str, mime: str) -> None:
    assert sniff_mime(encode(Image.new("RGB", (8, 8)), fmt)) == mime


def test_sniff_mime_recognises_a_bomb_header_without_decoding_it() -> None:
    assert sniff_mime(png_claiming(30_000, 30_000)) == "image/png"


def test_sniff_mime_returns_none_for_what_is_not_an_image() -> None:
    assert sniff_mime(b"") is None
    assert sniff_mime(b"hello, world\n") is None
    assert sniff_mime(b"%PDF-1.7\n") is None
    assert sniff_mime(b"BMW service report, 2024 edition\n") is None
