"""The sandbox's try-on renderer: the garment, its plain backdrop removed, laid on the person.

A deliberately simple composite (no pose or body model): it exists so that a finished sandbox job
returns an image that visibly combines both inputs, never a copy of either.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFilter, ImageOps

from mirrago.sandbox.render.memo import PictureMemo

MAX_SIDE = 1024
# Background removal runs on a small copy: it is fast there, and the mask is feathered anyway.
_MASK_SIDE = 192
# Largest per-channel difference from the backdrop colour that still counts as backdrop.
_TOLERANCE = 38
# Where the garment goes on the person, as fractions of the person image.
_TORSO_TOP = 0.30
_TORSO_WIDTH = 0.45
_TORSO_MAX_HEIGHT = 0.66

# A person's backdrop is matched more tightly: light clothes must not count as a light wall.
_PERSON_TOLERANCE = 22

# (centre x, chin y, face width, face height) in canvas pixels
_Face = tuple[float, float, float, float]

KEEP_BACKGROUND = frozenset({"", "original", "false", "none", "keep", "no", "0"})
BACKGROUND_CHOICES = ("original", "white", "studio")


def parse_background(value: object) -> str | None:
    """Normalise a `background`/`backgroud` value: None keeps the person's own backdrop.

    Accepts the reference's `false`, the names in `BACKGROUND_CHOICES` and any colour Pillow
    knows (`#eef`, `lightblue`). `true` asks for a replaced backdrop and means `white`.
    Raises ValueError with a message saying what is accepted.
    """
    if value is None or value is False:
        return None
    if value is True:
        return "white"
    text = str(value).strip().lower()
    if text in KEEP_BACKGROUND:
        return None
    if text == "true":
        return "white"
    if text in BACKGROUND_CHOICES:
        return text
    try:
        ImageColor.getrgb(text)
    except ValueError:
        raise ValueError(
            f"Unknown background {str(value)[:40]!r}: use original (or false), white, studio, "
            "or a colour such as #f0f0f0."
        ) from None
    return text


def compose(
    person: Image.Image, garment: Image.Image, background: str | None = None
) -> Image.Image:
    """Return the person wearing the garment, at most `MAX_SIDE` px on its longest side (RGB).

    `background` is a value from `parse_background`: None keeps the person's backdrop.
    """
    canvas = _fit(ImageOps.exif_transpose(person).convert("RGB"), MAX_SIDE)
    cutout = _cut_outs.get(garment, lambda picture: cut_out(ImageOps.exif_transpose(picture)))
    face = _find_face(canvas)  # on the original photo, before any backdrop change
    box = _garment_box(canvas, cutout, face)
    if background is not None:
        canvas = _replace_backdrop(canvas, background, face)
    return _place(canvas, cutout, box)


_cut_outs: PictureMemo[Image.Image] = PictureMemo(16)  # garment -> its cut-out


def cut_out(garment: Image.Image) -> Image.Image:
    """The garment as RGBA, cropped to its content, with its plain backdrop made transparent.

    A garment that already has transparency keeps its own alpha. Otherwise the backdrop is the
    region of near-border-colour pixels connected to the border (a flood fill with tolerance),
    so white parts inside the garment survive. If that would remove almost everything (the
    "garment" is a flat colour or a busy photo edge to edge), the whole image is kept.
    """
    rgba = garment.convert("RGBA")
    alpha = rgba.getchannel("A")
    if alpha.getextrema()[0] >= 250:
        alpha = _foreground_mask(rgba.convert("RGB"))
        rgba.putalpha(alpha)
    box = alpha.point(lambda a: 255 if a > 24 else 0).getbbox()
    if box is None or _area(box) < 0.02 * rgba.width * rgba.height:
        rgba.putalpha(255)
        return rgba
    return rgba.crop(box)


def _fit(image: Image.Image, max_side: int) -> Image.Image:
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _area(box: tuple[int, int, int, int]) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _border_connected_backdrop(
    rgb: Image.Image, *, whole_border: bool = True, tolerance: int = _TOLERANCE
) -> tuple[np.ndarray, np.ndarray]:
    """The backdrop colour (median of the border) and a boolean mask of the pixels that look
    like it and touch the border, computed on `rgb` as given (pass a small copy).

    With `whole_border` False only the top edge and the upper sides count as border: in a
    photo of a person the body usually runs off the bottom edge.
    """
    arr = np.asarray(rgb, dtype=np.int16)
    seeds = np.zeros(arr.shape[:2], dtype=bool)
    seeds[0, :] = True
    seeds[: int(arr.shape[0] * (1.0 if whole_border else 0.7)), [0, -1]] = True
    if whole_border:
        seeds[-1, :] = True
    backdrop = np.median(arr[seeds], axis=0)
    similar = np.abs(arr - backdrop).max(axis=2) <= tolerance
    region = seeds & similar
    # Grow from the border through similar pixels until nothing changes (a vectorised flood fill).
    for _ in range(4 * max(arr.shape[:2])):
        grown = region.copy()
        grown[1:] |= region[:-1]
        grown[:-1] |= region[1:]
        grown[:, 1:] |= region[:, :-1]
        grown[:, :-1] |= region[:, 1:]
        grown &= similar
        if np.array_equal(grown, region):
            break
        region = grown
    return backdrop, region


def _small_copy(rgb: Image.Image) -> Image.Image:
    copy = rgb.copy()
    copy.thumbnail((_MASK_SIDE, _MASK_SIDE), Image.Resampling.BILINEAR)
    return copy


def _upscaled_mask(region: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    small = Image.fromarray(np.where(region, 255, 0).astype(np.uint8), "L")
    return np.asarray(small.resize(size, Image.Resampling.BILINEAR))


def _close_vertically(mask: np.ndarray, reach: int) -> np.ndarray:
    """Fill horizontal gaps in `mask` up to `reach` rows high that have the mask both above
    and below: a white stripe running out to a garment's edge is garment, though the flood
    fill from the border reached it through that edge."""
    rows = mask.shape[0]
    padded = np.vstack(
        [np.zeros((1, mask.shape[1]), dtype=np.int32), np.cumsum(mask, axis=0, dtype=np.int32)]
    )
    index = np.arange(rows)
    above = padded[index + 1] - padded[np.clip(index - reach, 0, rows)]
    below = padded[np.clip(index + reach + 1, 0, rows)] - padded[index]
    return mask | ((above > 0) & (below > 0))


def _foreground_mask(rgb: Image.Image) -> Image.Image:
    """An "L" mask at full size: 255 on the garment, 0 on its backdrop, lightly feathered.

    The flood fill runs on a small copy; along the blurry edge band that its upscaling leaves,
    each full-size pixel is decided by its own colour, so the edge stays crisp and carries no
    halo of the backdrop.
    """
    backdrop, region = _border_connected_backdrop(_small_copy(rgb))
    region = ~_close_vertically(~region, max(3, region.shape[0] // 18))
    coarse = _upscaled_mask(region, rgb.size)
    edge = (coarse > 0) & (coarse < 255)
    foreground = coarse == 0
    edge_pixels = np.asarray(rgb, dtype=np.int16)[edge]  # decide only the edge band by colour
    foreground[edge] = np.abs(edge_pixels - backdrop).max(axis=1) > _TOLERANCE
    mask = Image.fromarray(np.where(foreground, 255, 0).astype(np.uint8), "L")
    return mask.filter(ImageFilter.GaussianBlur(max(0.6, max(rgb.size) / 1200)))


def _backdrop_fill(size: tuple[int, int], background: str) -> Image.Image:
    if background == "studio":
        # A soft grey gradient, lighter at the top, like a photo studio sweep.
        width, height = size
        ramp = np.linspace(236, 178, height, dtype=np.float32)[:, None]
        grey = np.repeat(ramp, width, axis=1).astype(np.uint8)
        return Image.merge("RGB", [Image.fromarray(grey, "L")] * 3)
    colour = (255, 255, 255) if background == "white" else ImageColor.getrgb(background)[:3]
    return Image.new("RGB", size, colour)


def _subject_mask(size: tuple[int, int], face: _Face | None) -> np.ndarray:
    """Where the person probably is (255) as a soft mask: head and shoulders-wide torso below
    a found face, else a tall central ellipse."""
    width, height = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    if face is None:
        draw.ellipse((width * 0.2, height * 0.05, width * 0.8, height * 1.3), fill=255)
        radius = max(width, height) / 30
    else:
        centre, chin, face_width, face_height = face
        head_top = chin - face_height * 1.35  # the face box plus hair
        draw.ellipse(
            (centre - face_width * 0.7, head_top, centre + face_width * 0.7, chin), fill=255
        )
        draw.rounded_rectangle(
            (
                centre - face_width * 1.6,
                chin - face_height * 0.1,
                centre + face_width * 1.6,
                height * 2,
            ),
            radius=face_width * 0.6,
            fill=255,
        )
        radius = face_width * 0.12
    return np.asarray(mask.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32)


def _replace_backdrop(canvas: Image.Image, background: str, face: _Face | None) -> Image.Image:
    """Crudely swap the person's backdrop: plain areas connected to the top and sides, and a
    soft vignette towards the edges, take the new background, except where the person
    probably is."""
    width, height = canvas.size
    _, plain = _border_connected_backdrop(
        _small_copy(canvas), whole_border=False, tolerance=_PERSON_TOLERANCE
    )
    vignette = Image.new("L", canvas.size, 230)
    ImageDraw.Draw(vignette).ellipse(
        (width * 0.14, height * 0.02, width * 0.86, height * 1.25), fill=0
    )
    vignette = vignette.filter(ImageFilter.GaussianBlur(max(width, height) / 25))
    backdrop = np.maximum(_upscaled_mask(plain, canvas.size), np.asarray(vignette))
    keep = _subject_mask(canvas.size, face) / 255.0
    mask = Image.fromarray((backdrop * (1.0 - keep)).astype(np.uint8), "L")
    mask = mask.filter(ImageFilter.GaussianBlur(2))
    return Image.composite(_backdrop_fill(canvas.size, background), canvas, mask)


def _find_face(canvas: Image.Image) -> _Face | None:
    """Locate a face by skin tone in the upper part of the picture (no detector, no OpenCV).

    Returns (centre x, chin y, face width, face height) in canvas pixels, or None when nothing
    face-like is found. Skin is the classic YCbCr box, with red above green above blue, which
    leaves out orange suits and red flags.
    """
    small = canvas.copy()
    small.thumbnail((128, 128), Image.Resampling.BILINEAR)
    factor = canvas.width / small.width
    ycc = np.asarray(small.convert("YCbCr"), dtype=np.int16)
    rgb = np.asarray(small, dtype=np.int16)
    luma, cb, cr = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    skin = (
        (cr >= 135)
        & (cr <= 172)
        & (cb >= 85)
        & (cb <= 127)
        & (luma > 50)
        & (rgb[..., 0] > rgb[..., 1])
        & (rgb[..., 1] >= rgb[..., 2])
    )
    height, width = skin.shape
    upper = skin[: int(height * 0.6)]
    if upper.sum() < 0.004 * height * width:
        return None
    columns = upper.sum(axis=0)
    centre = int(np.searchsorted(np.cumsum(columns), columns.sum() / 2))
    half_band = max(2, int(width * 0.25))
    rows = upper[:, max(0, centre - half_band) : centre + half_band].sum(axis=1)
    peak_row = int(rows.argmax())
    if rows[peak_row] < 3:
        return None
    # The face is the run of well-filled rows around the widest one; a gap of a row or two
    # (glasses, eyebrows) does not end it.
    filled = rows >= 0.3 * rows[peak_row]
    top = bottom = peak_row
    while top > 0 and filled[max(0, top - 3) : top].any():
        top -= 1
    while bottom < len(rows) - 1 and filled[bottom + 1 : bottom + 4].any():
        bottom += 1
    face_height, face_width = bottom - top + 1, int(rows[peak_row])
    if not (0.05 * height <= face_height <= 0.5 * height):
        return None
    if not (0.5 <= face_height / face_width <= 2.5):
        return None
    return (centre + 0.5) * factor, (bottom + 1) * factor, face_width * factor, face_height * factor


def _garment_box(
    canvas: Image.Image, cutout: Image.Image, face: _Face | None
) -> tuple[int, int, int, int]:
    """Where the garment goes (left, top, width, height): below the chin and as wide as the
    shoulders when a face was found, else centred on the upper body."""
    width, height = canvas.size
    if face is None:
        scale = (width * _TORSO_WIDTH) / cutout.width
        if cutout.height * scale > height * _TORSO_MAX_HEIGHT:
            scale = (height * _TORSO_MAX_HEIGHT) / cutout.height
        centre, top = width / 2, height * _TORSO_TOP
    else:
        # Shoulders are about 2.8 face widths; a tall garment may run off the bottom edge.
        centre, chin, face_width, face_height = face
        shoulders = min(max(face_width * 2.8, width * 0.35), width * 0.85)
        scale = shoulders / cutout.width
        top = min(chin + 0.3 * face_height, height * 0.6)
    size = (max(1, round(cutout.width * scale)), max(1, round(cutout.height * scale)))
    return round(centre - size[0] / 2), round(top), size[0], size[1]


def _place(canvas: Image.Image, cutout: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    left, top, width, height = box
    piece = cutout.resize((width, height), Image.Resampling.BILINEAR)
    # A soft shadow under the garment makes it sit on the body rather than float over it. Only
    # the piece's neighbourhood is blurred (its alpha alone), not the whole canvas.
    offset = max(2, canvas.width // 200)
    margin = offset * 8  # well past the blur's reach (a radius of 2 x offset)
    shadow = Image.new("L", (width + 2 * margin, height + 2 * margin), 0)
    shadow.paste(piece.getchannel("A").point(lambda a: a * 2 // 5), (margin, margin))
    shadow = shadow.filter(ImageFilter.GaussianBlur(offset * 2))

    result = canvas.convert("RGB")  # a copy: paste clips whatever falls outside the canvas
    result.paste((0, 0, 0), (left + offset - margin, top + offset - margin), shadow)
    result.paste(piece, (left, top), piece)
    return result
