"""A garment photo read as a garment: its cut-out, its torso and sleeves, and their landmarks.

Product shots are frontal and symmetric: the torso is the central band whose width the hem
sets, the sleeves are what lies outside that band, and the shoulder points are where the band
meets the garment's top edge. A garment with nothing outside that band near the top (a dress
on straps, a vest) has no sleeves; its straps set its width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from mirrago.sandbox.render.memo import PictureMemo
from mirrago.sandbox.render.placement import cut_out

# Work on the garment at most this size: plenty for a torso at 1024 px, and fast.
_GARMENT_SIDE = 512


@dataclass(frozen=True)
class Sleeve:
    """One sleeve in garment pixels: the seam's top and bottom on the torso's side, the cuff's
    centre, the widest half-width across the sleeve, and the sleeve alone as RGBA."""

    seam_top: np.ndarray
    seam_bottom: np.ndarray
    cuff: np.ndarray
    half_width: float
    image: Image.Image

    @property
    def root(self) -> np.ndarray:
        return (self.seam_top + self.seam_bottom) / 2

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.cuff - self.root))


@dataclass(frozen=True)
class Garment:
    """The garment's landmarks in its own (cropped) pixels.

    `left`/`right` are the torso band's columns, `shoulder_y` the top of the garment at them
    (for a garment without sleeves: its straps' span, and the top of its bodice),
    `hem_y` its last row, `neck_y` the top of its centre. `torso` is the cut-out without its
    sleeves; `sleeves` is (image-left, image-right), empty for a garment without sleeves.
    """

    image: Image.Image
    torso: Image.Image
    left: float
    right: float
    shoulder_y: float
    hem_y: float
    neck_y: float
    sleeves: tuple[Sleeve, ...]
    colour: tuple[int, int, int]

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def centre_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def is_long(self) -> bool:
        """A dress or a long coat: keeps its own proportions instead of ending at the hips."""
        return not self.sleeves or (self.hem_y - self.shoulder_y) > 1.9 * self.width


_read: PictureMemo[Garment] = PictureMemo(16)


def read_garment(garment: Image.Image) -> Garment:
    """The garment's cut-out and landmarks (cached by content: a sandbox renders the same
    garment on many persons)."""
    return _read.get(garment, lambda picture: _analyse(ImageOps.exif_transpose(picture)))


def _widest_runs(solid: np.ndarray) -> np.ndarray:
    """The length of each row's longest run of garment pixels."""
    edges = np.diff(np.pad(solid.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # row-major order pairs each start with its end
    widest = np.zeros(solid.shape[0], dtype=np.int64)
    np.maximum.at(widest, rows, ends - starts)
    return widest


def _centre_runs(solid: np.ndarray, centre: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row, the run through column `centre`: (has one, left column, right column
    exclusive)."""
    width = solid.shape[1]
    on = solid[:, centre]
    left_gap = ~solid[:, : centre + 1][:, ::-1]
    right_gap = ~solid[:, centre:]
    left_len = np.where(left_gap.any(axis=1), left_gap.argmax(axis=1), centre + 1)
    right_len = np.where(right_gap.any(axis=1), right_gap.argmax(axis=1), width - centre)
    return on, centre + 1 - left_len, centre + right_len


def _analyse(garment: Image.Image) -> Garment:
    if max(garment.size) > _GARMENT_SIDE:  # cut out at working size: the same, faster
        garment = garment.copy()
        garment.thumbnail((_GARMENT_SIDE, _GARMENT_SIDE), Image.Resampling.BILINEAR)
    image = cut_out(garment)
    alpha = np.asarray(image.getchannel("A"))
    solid = alpha > 128
    height, width = solid.shape
    rows_with = np.nonzero(solid.any(axis=1))[0]
    if len(rows_with) == 0:
        solid[:] = True
        rows_with = np.arange(height)
    top_row, hem = int(rows_with[0]), int(rows_with[-1])
    centre = int(round(np.nonzero(solid)[1].mean()))
    span = hem - top_row + 1
    on, run_left, run_right = _centre_runs(solid, centre)
    widest = _widest_runs(solid)

    def band(fraction_from: float, fraction_to: float) -> tuple[float, float]:
        rows = slice(top_row + int(fraction_from * span), top_row + int(fraction_to * span))
        found = on[rows]
        if not found.any():
            return 0.0, float(width)
        return float(np.median(run_left[rows][found])), float(np.median(run_right[rows][found]))

    hem_left, hem_right = band(0.86, 0.95)
    upper_width = int(widest[top_row : top_row + max(1, int(0.45 * span))].max())
    has_sleeves = upper_width > 1.3 * (hem_right - hem_left)
    colour = _main_colour(image, solid)

    def top_at(x: float) -> float:
        column = solid[:, int(np.clip(x, 0, width - 1))]
        found = np.nonzero(column)[0]
        return float(found[0]) if len(found) else float(top_row)

    neck_y = top_at(centre)
    if not has_sleeves:
        # Straps or a sleeveless bodice: its width is that of its top rows.
        top_band = solid[top_row : top_row + max(2, int(0.06 * span))]
        columns = np.nonzero(top_band.any(axis=0))[0]
        left, right = float(columns[0]), float(columns[-1] + 1)
        # Its anchor is the bodice's top: the first row wider than straps can be.
        wide = np.nonzero(widest[top_row:hem] > 0.25 * width)[0]
        bodice = top_row + int(wide[0]) if len(wide) else top_row
        return Garment(image, image, left, right, float(bodice), float(hem), neck_y, (), colour)

    left, right = hem_left, hem_right
    shoulder_y = (top_at(left + 1) + top_at(right - 2)) / 2
    xs = np.arange(width)[None, :]
    torso_alpha = np.where((xs >= left) & (xs < right), alpha, 0).astype(np.uint8)
    torso = image.copy()
    torso.putalpha(Image.fromarray(torso_alpha, "L"))
    margin = 0.05 * (right - left)
    sleeves = (
        _sleeve(image, alpha, solid, left - xs, int(left) - 2, margin),
        _sleeve(image, alpha, solid, xs - right + 1, int(right) + 1, margin),
    )
    return Garment(image, torso, left, right, shoulder_y, float(hem), neck_y, sleeves, colour)


def _sleeve(
    image: Image.Image,
    alpha: np.ndarray,
    solid: np.ndarray,
    outside: np.ndarray,
    seam_x: int,
    margin: float,
) -> Sleeve:
    """The sleeve on one side: `outside` is each column's distance out of the torso band
    (positive on this side). The seam is the run of garment down the column just outside the
    band, from the shoulder to the armpit; below the armpit, pixels within `margin` of the
    band are the torso's flared hem, not sleeve."""
    column = solid[:, int(np.clip(seam_x, 0, solid.shape[1] - 1))]
    rows = np.nonzero(column)[0]
    start = int(rows[0]) if len(rows) else 0
    end = start
    while end + 1 < len(column) and column[end + 1]:
        end += 1
    end = max(end, start + 4)
    ys = np.arange(solid.shape[0])[:, None]
    side = (outside > 0) & ((ys <= end) | (outside > margin))
    seam_top = np.array([seam_x, start], dtype=np.float64)
    seam_bottom = np.array([seam_x, end], dtype=np.float64)
    root = (seam_top + seam_bottom) / 2
    ys_found, xs_found = np.nonzero(solid & side)
    if len(xs_found) < 10:
        xs_found, ys_found = np.array([seam_x, seam_x]), np.array([start, end])
    points = np.stack([xs_found, ys_found], axis=1).astype(np.float64)
    # The sleeve's axis runs from the seam through its centre of mass; the cuff is where the
    # sleeve ends along it.
    axis = points.mean(axis=0) - root
    axis /= max(np.linalg.norm(axis), 1e-6)
    cuff = root + axis * float(np.percentile((points - root) @ axis, 99.5))
    across = np.abs((points - root) @ np.array([-axis[1], axis[0]]))
    half_width = float(np.percentile(across, 98)) if len(across) else 4.0
    sleeve = image.copy()
    sleeve.putalpha(Image.fromarray(np.where(side, alpha, 0).astype(np.uint8), "L"))
    return Sleeve(seam_top, seam_bottom, cuff, max(half_width, 4.0), sleeve)


def _main_colour(image: Image.Image, solid: np.ndarray) -> tuple[int, int, int]:
    rgb = np.asarray(image.convert("RGB"))[::3, ::3][solid[::3, ::3]]
    if len(rgb) == 0:
        return (128, 128, 128)
    return tuple(int(v) for v in rgb.mean(axis=0))  # type: ignore[return-value]
