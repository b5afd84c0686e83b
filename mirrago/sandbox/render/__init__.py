"""The sandbox's try-on renderer: the garment fitted to the person's pose, offline.

`compose` finds the body (MediaPipe's pose and segmentation models, run by `ai-edge-litert`;
see `body.py`), reads the garment's outline (`garment.py`), warps the garment's torso and
sleeves onto the body and layers, shades and feathers them (`fit.py`). When no person is
found, or the models cannot run here, it falls back to the plain placement of
`placement.py` and logs why: a sandbox job never fails for that.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

from mirrago.sandbox.render import placement
from mirrago.sandbox.render.body import Body, NoPerson, find_body
from mirrago.sandbox.render.fit import fit
from mirrago.sandbox.render.garment import read_garment
from mirrago.sandbox.render.placement import (
    BACKGROUND_CHOICES,
    MAX_SIDE,
    cut_out,
    parse_background,
)

__all__ = [
    "BACKGROUND_CHOICES",
    "MAX_SIDE",
    "Body",
    "NoPerson",
    "Rendering",
    "compose",
    "cut_out",
    "find_body",
    "parse_background",
    "render",
]

log = logging.getLogger("mirrago.sandbox.render")


@dataclass(frozen=True)
class Rendering:
    """A render and what it is made of: `coverage` is the garment's opacity per pixel of
    `image` (None for the plain placement), `body` the person found (None if none was), and
    `fallback` why the plain placement was used (None when the garment was fitted)."""

    image: Image.Image
    coverage: np.ndarray | None
    body: Body | None
    fallback: str | None


def compose(
    person: Image.Image,
    garment: Image.Image,
    background: str | None = None,
    *,
    fitted: bool = True,
) -> Image.Image:
    """Return the person wearing the garment, at most `MAX_SIDE` px on its longest side (RGB).

    `background` is a value from `parse_background`: None keeps the person's backdrop.
    `fitted=False` skips the body models for the plain placement (a fraction of the CPU: for
    load tests of the API, where the picture does not matter).
    """
    if not fitted:
        canvas = placement._fit(ImageOps.exif_transpose(person).convert("RGB"), MAX_SIDE)
        return placement.compose(canvas, garment, background)
    return render(person, garment, background).image


def render(person: Image.Image, garment: Image.Image, background: str | None = None) -> Rendering:
    """`compose`, with the garment's coverage and the body it was fitted to."""
    canvas = placement._fit(ImageOps.exif_transpose(person).convert("RGB"), MAX_SIDE)
    try:
        body = find_body(canvas)
    except NoPerson as reason:
        log.warning("sandbox render: no person found (%s); used the plain placement", reason)
        image = placement.compose(canvas, garment, background)
        return Rendering(image, None, None, str(reason))
    shape = read_garment(garment)
    backdrop = canvas if background is None else replace_background(canvas, body, background)
    image, coverage = fit(canvas, backdrop, shape, body)
    return Rendering(image, coverage, body, None)


def replace_background(canvas: Image.Image, body: Body, background: str) -> Image.Image:
    """The photo with everything but the person (by the segmentation mask) replaced by
    `background` (`white`, `studio` or a colour). The face (`Body.face_mask`) is always kept
    as it was."""
    mask = np.clip((body.mask - 0.35) / 0.3, 0.0, 1.0)  # a firm edge: the mask is coarse
    alpha = Image.fromarray((mask * 255).astype(np.uint8), "L")
    # The segmentation model is trained on upper bodies and loses legs towards the bottom of
    # a full-length photo: keep the skin- or trouser-coloured band along each seen leg.
    legs = _legs(canvas, body)
    if legs is not None:
        alpha = ImageChops.lighter(alpha, legs)
    alpha = alpha.filter(ImageFilter.GaussianBlur(max(1.0, max(canvas.size) / 700)))
    alpha_array = np.asarray(alpha).copy()
    alpha_array[body.face_mask(canvas.size)] = 255
    fill = placement._backdrop_fill(canvas.size, background)
    return Image.composite(canvas, fill, Image.fromarray(alpha_array, "L"))


def _legs(canvas: Image.Image, body: Body) -> Image.Image | None:
    """A mask of the legs (hip → knee → ankle, where seen) whose colour is that of the
    person's hips, or None."""
    points, seen = body.points, body.visibility > 0.5
    width = body.shoulder_width
    mask = Image.new("L", canvas.size, 0)
    draw = ImageDraw.Draw(mask)
    drawn = False
    for hip, knee, ankle in ((23, 25, 27), (24, 26, 28)):
        if not (seen[hip] and seen[knee]):
            continue
        chain = [hip, knee, ankle] if seen[ankle] else [hip, knee]
        line = [tuple(points[i]) for i in chain]
        if seen[ankle]:  # on to the foot
            line.append(tuple(points[ankle] + (points[ankle] - points[knee]) * 0.15))
        draw.line(line, fill=255, width=max(1, int(0.42 * width)), joint="curve")
        drawn = True
    if not drawn:
        return None
    hips = points[[23, 24]].mean(axis=0)
    x, y = int(np.clip(hips[0], 0, canvas.width - 1)), int(np.clip(hips[1], 0, canvas.height - 1))
    sample = np.asarray(canvas.crop((x - 8, y + 4, x + 8, y + 20)), dtype=np.int16).reshape(-1, 3)
    if len(sample) == 0:
        return None
    trousers = np.median(sample, axis=0)
    rgb = np.asarray(canvas, dtype=np.int16)
    like = np.abs(rgb - trousers).max(axis=2) < 48
    legs = (np.asarray(mask) > 0) & like
    return Image.fromarray((legs * 255).astype(np.uint8), "L")
