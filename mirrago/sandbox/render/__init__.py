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
from PIL import Image, ImageFilter, ImageOps

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
    person: Image.Image, garment: Image.Image, background: str | None = None
) -> Image.Image:
    """Return the person wearing the garment, at most `MAX_SIDE` px on its longest side (RGB).

    `background` is a value from `parse_background`: None keeps the person's backdrop.
    """
    return render(person, garment, background).image


def render(
    person: Image.Image, garment: Image.Image, background: str | None = None
) -> Rendering:
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
    alpha = Image.fromarray((mask * 255).astype(np.uint8), "L").filter(
        ImageFilter.GaussianBlur(max(1.0, max(canvas.size) / 700))
    )
    alpha_array = np.asarray(alpha).copy()
    alpha_array[body.face_mask(canvas.size)] = 255
    fill = placement._backdrop_fill(canvas.size, background)
    return Image.composite(canvas, fill, Image.fromarray(alpha_array, "L"))
