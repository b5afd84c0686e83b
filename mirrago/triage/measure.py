"""The measurements behind the flags: a result compared with its own person and garment photos.

Everything works on small copies (the person at `WORK_SIDE` px for colour and regions, grey at
`DETAIL_SIDE` px for detail and the face; only the blockiness looks at the result's own
pixels), so one result costs about a tenth of a second on one core at 1024 px. The person is
found with the sandbox renderer's pose and segmentation models (no download); without them the
face check is skipped and the background is what lies outside the changed region's box.

Each function returns the value its check in `flags.CHECKS` compares with the threshold, or
None when the check does not apply (no face found, a plain garment has no print to lose…).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import color
from skimage.feature import match_template
from skimage.metrics import structural_similarity

WORK_SIDE = 320
DETAIL_SIDE = 512
_CHANGED_DELTA = 10.0  # ΔE76 (CIELAB) past which a pixel counts as changed
_BACKGROUND_DELTA = 12.0


@dataclass(frozen=True)
class Person:
    """What the person photo tells at the working size: its Lab colours, grey detail copy,
    the person mask (None when no person was found) and the face box (or None)."""

    lab: np.ndarray
    grey: np.ndarray
    mask: np.ndarray | None
    face: tuple[int, int, int, int] | None


@dataclass(frozen=True)
class Changes:
    """Where the result differs from the person photo: ΔE per pixel and the changed region."""

    delta: np.ndarray
    changed: np.ndarray


def small(image: Image.Image, side: int) -> Image.Image:
    """`image` with its longest side at most `side` px (bilinear, anti-aliased)."""
    if max(image.size) <= side:
        return image
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def lab(image: Image.Image) -> np.ndarray:
    return color.rgb2lab(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)


def grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32)


# --------------------------------------------------------------------------- framing


def framing(person: Person, result_lab: np.ndarray, size: tuple[int, int]) -> tuple[float, bool]:
    """How far the result's frame is from the person photo's (0 = the same frame): the change
    of the aspect ratio, plus how far the head moved and grew.

    `result_lab` is the result on the person photo's working grid, `size` its own size. The
    head (the face box, widened) is looked for in the result at a few scales (normalised
    cross-correlation, at half the working size): in the same frame it is where it was, at
    the same size; a crop moves and enlarges it. Without a face, or when the head is not
    found (a replaced face, a crop through the head), only the aspect ratio counts. Returns the
    value and whether the head was found."""
    height, width = person.lab.shape[:2]
    aspect = abs(float(np.log((size[0] / size[1]) / (width / height))))
    if person.face is None:
        return aspect, False
    mine, theirs = _half_grey(person.lab), _half_grey(result_lab)
    left, top, right, bottom = (v / 2 for v in person.face)
    grow_x, grow_y = 0.3 * (right - left), 0.2 * (bottom - top)
    box = (
        max(0, round(left - grow_x)),
        max(0, round(top - grow_y)),
        min(mine.shape[1], round(right + grow_x)),
        min(mine.shape[0], round(bottom + grow_y)),
    )
    head = mine[box[1] : box[3], box[0] : box[2]]
    if min(head.shape) < 8:
        return aspect, False
    in_place, best, moved = -1.0, -1.0, 0.0
    for scale in (1.0, 1.1, 1.2, 1.32, 1.46, 1.6):
        shape = (round(head.shape[1] * scale), round(head.shape[0] * scale))
        if shape[0] >= theirs.shape[1] or shape[1] >= theirs.shape[0]:
            break
        template = np.asarray(Image.fromarray(head).resize(shape, Image.Resampling.BILINEAR))
        scores = match_template(theirs, template)
        if scale == 1.0:
            in_place = float(scores[box[1], box[0]])
        y, x = np.unravel_index(int(scores.argmax()), scores.shape)
        if scores[y, x] > best:
            shift = np.hypot(x - box[0], y - box[1]) / max(mine.shape)
            best, moved = float(scores[y, x]), float(shift + np.log(scale))
    # The head counts as moved only when found elsewhere clearly better than where it was
    # (a blurred or replaced face matches poorly everywhere).
    if best < 0.6:
        return aspect, False
    return aspect + (moved if best > in_place + 0.15 else 0.0), True


def _half_grey(picture_lab: np.ndarray) -> np.ndarray:
    lightness = picture_lab[..., 0].astype(np.float32)
    return lightness[: lightness.shape[0] // 2 * 2 : 2, : lightness.shape[1] // 2 * 2 : 2]


# --------------------------------------------------------------------------- changed region


def changes(person: Person, result_lab: np.ndarray) -> Changes:
    """ΔE76 between the two (smoothed, so that noise, blur, blocks and resampling do not count:
    they move edges by a pixel or two, a garment changes whole areas) and the region where it
    passes `_CHANGED_DELTA`, cleaned of specks."""
    blur = (2, 2, 0)
    delta = np.linalg.norm(
        ndimage.gaussian_filter(person.lab, blur) - ndimage.gaussian_filter(result_lab, blur),
        axis=2,
    )
    changed = ndimage.binary_opening(delta > _CHANGED_DELTA, iterations=1)
    return Changes(delta=delta, changed=changed)


def unchanged_share(person: Person, found: Changes) -> float:
    """The share of the person (or of the picture, without a person mask) that changed."""
    if person.mask is not None and person.mask.sum() > 0.02 * person.mask.size:
        inside = person.mask > 0.5
        return float(found.changed[inside].mean())
    return float(found.changed.mean())


def garment_region(person: Person, found: Changes) -> np.ndarray:
    """Where the garment was put: the changed region, near the person, without the face."""
    region = found.changed.copy()
    if person.mask is not None:
        region &= ndimage.binary_dilation(person.mask > 0.3, iterations=6)
    if person.face is not None:
        region &= ~_box_mask(region.shape, person.face)
    return region


# --------------------------------------------------------------------------- face, background


def face_difference(person: Person, result_grey: np.ndarray) -> float | None:
    """1 − SSIM of the face (grey, lightly smoothed so that a slightly softer result is not a
    new face), at `DETAIL_SIDE`."""
    if person.face is None:
        return None
    scale = person.grey.shape[1] / person.lab.shape[1]
    left, top, right, bottom = (round(v * scale) for v in person.face)
    height, width = person.grey.shape
    left, top = max(0, left), max(0, top)
    right, bottom = min(width, right), min(height, bottom)
    if right - left < 12 or bottom - top < 12:
        return None
    a = ndimage.gaussian_filter(person.grey[top:bottom, left:right], 1.5)
    b = ndimage.gaussian_filter(result_grey[top:bottom, left:right], 1.5)
    return float(1.0 - structural_similarity(a, b, data_range=255.0))


def background_change(person: Person, found: Changes) -> float | None:
    """The share of the background (well away from the person) that changed, on smoothed
    copies so that a softer or re-encoded picture does not count."""
    background = background_region(person, found)
    if background.mean() < 0.05:
        return None
    return float(background_changed(found)[background].mean())


def background_region(person: Person, found: Changes) -> np.ndarray:
    """The background well away from the person (without a person mask: outside the changed
    region's box), never the face."""
    if person.mask is not None:
        near = ndimage.binary_dilation(
            person.mask > 0.15, iterations=max(3, person.mask.shape[0] // 40)
        )
        background = ~near
    else:
        background = np.ones(found.changed.shape, dtype=bool)
        rows, cols = np.nonzero(found.changed)
        if len(rows):
            background[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = False
    if person.face is not None:
        background &= ~_box_mask(background.shape, person.face)
    return background


def background_changed(found: Changes) -> np.ndarray:
    """Where the smoothed difference passes the background's threshold."""
    return ndimage.gaussian_filter(found.delta, 2.0) > _BACKGROUND_DELTA


def face_region(person: Person) -> np.ndarray | None:
    """The face box on the working grid (None: no face found)."""
    return None if person.face is None else _box_mask(person.lab.shape, person.face)


# --------------------------------------------------------------------------- the garment


def garment_shape(garment: Image.Image) -> Image.Image:
    """The garment cut out of its photo (RGBA, at most 256 px), by the sandbox renderer's rule."""
    from mirrago.sandbox.render.placement import cut_out

    return cut_out(small(garment, 256))


def garment_cutout(shape: Image.Image, area: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The garment's (`garment_shape`) Lab pixels and its eroded mask, scaled so it covers
    about `area` pixels: the size it has in the result, so that texture compares."""
    alpha = np.asarray(shape.getchannel("A")) > 200
    covered = max(1, int(alpha.sum()))
    scale = min(1.0, float(np.sqrt(area / covered)))
    size = (max(8, round(shape.width * scale)), max(8, round(shape.height * scale)))
    scaled = shape.resize(size, Image.Resampling.BILINEAR)
    mask = ndimage.binary_erosion(np.asarray(scaled.getchannel("A")) > 200, iterations=1)
    if mask.sum() < 30:
        return None
    return lab(scaled.convert("RGB")), mask


def colour_distance(
    garment_lab: np.ndarray, garment_mask: np.ndarray, result_lab: np.ndarray, region: np.ndarray
) -> float:
    """ΔE2000 between the garment photo's mean colour and the garment region's in the result."""
    photo = garment_lab[garment_mask].mean(axis=0)
    worn = result_lab[region].mean(axis=0)
    # kL = 2, as textile colour matching weighs lightness (the worn garment is shaded)
    return float(color.deltaE_ciede2000(photo[None], worn[None], kL=2)[0])


def detail(lightness: np.ndarray, mask: np.ndarray) -> float:
    """The mean gradient of the lightness inside `mask` (eroded: its own edge is no detail)."""
    inner = ndimage.binary_erosion(mask, iterations=2)
    if inner.sum() < 20:
        return 0.0
    gy, gx = np.gradient(ndimage.gaussian_filter(lightness, 0.7))
    return float(np.hypot(gx, gy)[inner].mean())


# --------------------------------------------------------------------------- quality


def detail_kept(person_grey: np.ndarray, result_grey: np.ndarray, region: np.ndarray) -> float:
    """The result's fine detail over the person photo's, where nothing was meant to change."""
    if region.sum() < 100:
        region = np.ones(region.shape, dtype=bool)
    ours = _fine(result_grey)[region].mean()
    theirs = _fine(person_grey)[region].mean()
    return float(ours / max(theirs, 1e-3))


def blockiness(picture: np.ndarray) -> float:
    """How much stronger the steps at the 8-pixel JPEG grid are than elsewhere (1 = none), on
    every third row and column (the grid is the same on each)."""
    if min(picture.shape) < 32:
        return 1.0
    across = np.abs(np.diff(picture[::3].astype(np.int16), axis=1))
    down = np.abs(np.diff(picture[:, ::3].astype(np.int16), axis=0))
    at_grid = across[:, 7::8].mean() + down[7::8, :].mean()
    everywhere = across.mean() + down.mean()
    return float(at_grid / max(everywhere, 1e-3))


def _fine(picture: np.ndarray) -> np.ndarray:
    return np.abs(ndimage.laplace(picture))


def _box_mask(shape: tuple[int, ...], box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros(shape[:2], dtype=bool)
    left, top, right, bottom = box
    mask[max(0, top) : max(0, bottom), max(0, left) : max(0, right)] = True
    return mask
