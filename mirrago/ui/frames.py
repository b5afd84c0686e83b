"""Preview images drawn into frames of one size, so that person, garment and result line up at
the same height in their columns; plus the before/after comparison and the placeholders."""

from __future__ import annotations

import html
import io
from pathlib import Path

import streamlit as st
from PIL import Image, ImageDraw, ImageFont, ImageOps, ImageStat

from mirrago.datadir import file_version

# Portrait 3:4, the shape of most person photos; garments and results are letterboxed into it.
FRAME_SIZE = (600, 800)
THUMB_SIZE = (240, 320)
FRAME_BACKGROUND = (241, 238, 251)  # theme.secondaryBackgroundColor
ACCENT = (91, 63, 217)  # theme.primaryColor
MUTED_TEXT = (120, 112, 150)


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "P", "PA"):
        # Transparent garments sit on white, like a product shot.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("RGB")


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def _edge_colour(image: Image.Image) -> tuple[int, int, int]:
    """The colour of the image's border when it is plain (a studio backdrop, a product shot),
    so the letterbox blends in; the frame colour otherwise."""
    small = image.resize((64, 64))
    border = Image.new("RGB", (64 * 4, 1))
    for index, box in enumerate(((0, 0, 64, 1), (0, 63, 64, 64), (0, 0, 1, 64), (63, 0, 64, 64))):
        strip = small.crop(box).resize((64, 1))
        border.paste(strip, (index * 64, 0))
    stats = ImageStat.Stat(border)
    if max(stats.stddev) > 10:
        return FRAME_BACKGROUND
    return tuple(round(value) for value in stats.mean)  # type: ignore[return-value]


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    scale = min(size[0] / image.width, size[1] / image.height)
    fitted = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
        Image.Resampling.LANCZOS,
    )
    canvas = Image.new("RGB", size, _edge_colour(image))
    canvas.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return canvas


@st.cache_data(max_entries=256, show_spinner=False)
def framed(data: bytes, size: tuple[int, int] = FRAME_SIZE, selected: bool = False) -> bytes | None:
    """`data` fitted (not cropped) into a `size` frame, as JPEG; None if it is not an image.
    `selected` draws the accent ring a chosen sample wears."""
    try:
        image = _fit(_open(data), size)
    except Exception:  # previews never raise: the picker reports bad files itself
        return None
    if selected:
        ring = max(4, size[0] // 30)
        ImageDraw.Draw(image).rectangle(
            (0, 0, size[0] - 1, size[1] - 1), outline=ACCENT, width=ring
        )
    return _jpeg(image)


def framed_file(
    path: str | Path, size: tuple[int, int] = FRAME_SIZE, selected: bool = False
) -> bytes | None:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return framed(data, size, selected)


@st.cache_data(max_entries=64, show_spinner=False)
def _framed_version(path: str, mtime: float) -> bytes | None:
    return framed_file(path)


def framed_stored(path: str | None) -> bytes | None:
    """`framed_file` of a file in the data dir, kept per file version: a result shown again
    (the detail dialog's Previous and Next) is not decoded and encoded again."""
    mtime = file_version(path)
    return None if mtime is None else _framed_version(str(path), mtime)


@st.cache_data(max_entries=64, show_spinner=False)
def before_after(before: bytes, after: bytes, split: float) -> bytes | None:
    """One frame showing `before` left of the split (0–1) and `after` right of it."""
    left, right = framed(before), framed(after)
    if left is None or right is None:
        return None
    image = Image.open(io.BytesIO(right)).convert("RGB")
    width, height = FRAME_SIZE
    cut = max(0, min(width, round(width * split)))
    if cut:
        image.paste(Image.open(io.BytesIO(left)).crop((0, 0, cut, height)), (0, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((cut - 2, 0, cut + 1, height), fill=(255, 255, 255))
    middle = height // 2
    draw.ellipse(
        (cut - 16, middle - 16, cut + 16, middle + 16),
        fill=(255, 255, 255),
        outline=ACCENT,
        width=3,
    )
    font = ImageFont.load_default(size=30)
    for text, x, anchor in (("BEFORE", 16, "la"), ("AFTER", width - 16, "ra")):
        draw.text(
            (x, 16),
            text,
            font=font,
            fill=(255, 255, 255),
            anchor=anchor,
            stroke_width=3,
            stroke_fill=(40, 30, 80),
        )
    return _jpeg(image)


@st.cache_data(max_entries=64, show_spinner=False)
def dimmed(data: bytes, size: tuple[int, int] = FRAME_SIZE) -> bytes | None:
    """The framed image washed out: the placeholder of a running or failed try-on."""
    frame = framed(data, size)
    if frame is None:
        return None
    image = Image.open(io.BytesIO(frame)).convert("RGB")
    veil = Image.new("RGB", image.size, FRAME_BACKGROUND)
    return _jpeg(Image.blend(image, veil, 0.72))


@st.cache_data(max_entries=16, show_spinner=False)
def empty_frame(size: tuple[int, int] = FRAME_SIZE, hint: str = "") -> bytes:
    """A blank frame (with an optional hint), so an empty column keeps its neighbours' height."""
    image = Image.new("RGB", size, FRAME_BACKGROUND)
    if hint:
        draw = ImageDraw.Draw(image)
        cx, cy = size[0] // 2, size[1] // 2 - size[1] // 20
        half = size[0] // 10
        line = (196, 188, 232)
        # A small "picture" glyph: a frame, a sun and a hill.
        draw.rounded_rectangle(
            (cx - half, cy - half * 0.8, cx + half, cy + half * 0.8),
            radius=half // 4,
            outline=line,
            width=max(2, half // 12),
        )
        draw.ellipse(
            (cx + half * 0.25, cy - half * 0.5, cx + half * 0.55, cy - half * 0.2), fill=line
        )
        draw.polygon(
            [
                (cx - half * 0.7, cy + half * 0.55),
                (cx - half * 0.15, cy - half * 0.1),
                (cx + half * 0.3, cy + half * 0.3),
                (cx + half * 0.5, cy + half * 0.1),
                (cx + half * 0.75, cy + half * 0.55),
            ],
            fill=line,
        )
        font = ImageFont.load_default(size=max(14, size[0] // 24))
        draw.text((cx, cy + half * 1.4), hint, font=font, fill=MUTED_TEXT, anchor="mm")
    return _jpeg(image)


def link_frame(url: str, alt: str) -> None:
    """An image the browser loads from `url` (the server fetches nothing), in the same 3:4
    frame as the others."""
    st.html(
        '<div style="aspect-ratio:3/4;background:#f1eefb;border-radius:.6rem;display:flex;'
        "align-items:center;justify-content:center;overflow:hidden;color:#787096;"
        'font-size:.85rem;text-align:center;padding:0 1rem">'
        f'<img src="{html.escape(url, quote=True)}" alt="{html.escape(alt, quote=True)}" '
        'style="max-width:100%;max-height:100%;object-fit:contain"></div>'
    )
