#!/usr/bin/env python
"""Regenerate the sample images shipped in mirrago/samples/ (a maintenance script, not a test).

Persons: two public-domain photographs taken from the scikit-image and matplotlib wheels,
cropped to a 3:4 portrait, plus illustrated studio figures drawn here. Garments: product shots
drawn here on a plain light backdrop (the sandbox removes it with a flood fill). Everything is
drawn at 3x and downsampled, so edges are antialiased. The output is deterministic: the same
photos and the same Pillow give byte-identical files. See mirrago/samples/PROVENANCE.md.

    python scripts/make_samples.py [--astronaut PATH] [--grace-hopper PATH] [--out DIR]

Without the path options the photos are looked up in an installed scikit-image / matplotlib
(found without importing them). Where a photo cannot be found, its committed file is kept.
To get them without installing anything into the project:
    pip download scikit-image matplotlib --no-deps -d /tmp/wheels   # then unzip the two files
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "mirrago" / "samples"

SCALE = 3  # supersampling factor: draw at 3x, downsample with LANCZOS
JPEG_QUALITY = 88
GARMENT_SIZE = 800
PERSON_SIZE = (768, 1024)
GARMENT_BACKDROP = (246, 246, 244)

Point = tuple[float, float]
Colour = tuple[int, int, int]


# --------------------------------------------------------------------------- drawing toolkit


def bezier(*points: Point, steps: int = 40) -> list[Point]:
    """Points along a quadratic (3 points) or cubic (4 points) Bezier curve, ends included."""
    out = []
    n = len(points) - 1
    for i in range(steps + 1):
        t = i / steps
        x = y = 0.0
        for k, (px, py) in enumerate(points):
            weight = math.comb(n, k) * (1 - t) ** (n - k) * t**k
            x += weight * px
            y += weight * py
        out.append((x, y))
    return out


def path(*parts: Sequence[Point] | Point) -> list[Point]:
    """Join single points and point lists into one outline."""
    out: list[Point] = []
    for part in parts:
        if isinstance(part[0], int | float):
            out.append(part)  # type: ignore[arg-type]
        else:
            out.extend(part)  # type: ignore[arg-type]
    return out


def mirror(points: Sequence[Point], cx: float) -> list[Point]:
    return [(2 * cx - x, y) for x, y in points]


def mix(a: Colour, b: Colour, t: float) -> Colour:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


class Sketch:
    """A supersampled RGB canvas with masks as float arrays (0..1), in design units."""

    def __init__(self, width: int, height: int, background: Colour | np.ndarray):
        self.width, self.height = width, height
        self.shape = (height * SCALE, width * SCALE)
        if isinstance(background, np.ndarray):
            self.pixels = background.astype(np.float32)
        else:
            self.pixels = np.empty((*self.shape, 3), np.float32)
            self.pixels[:] = background

    # -- masks
    def _draw_mask(self, draw: Callable[[ImageDraw.ImageDraw], None]) -> np.ndarray:
        layer = Image.new("L", (self.shape[1], self.shape[0]), 0)
        draw(ImageDraw.Draw(layer))
        return np.asarray(layer, np.float32) / 255.0

    def polygon(self, points: Sequence[Point]) -> np.ndarray:
        scaled = [(x * SCALE, y * SCALE) for x, y in points]
        return self._draw_mask(lambda d: d.polygon(scaled, fill=255))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        box = ((cx - rx) * SCALE, (cy - ry) * SCALE, (cx + rx) * SCALE, (cy + ry) * SCALE)
        return self._draw_mask(lambda d: d.ellipse(box, fill=255))

    def lines(
        self, points: Sequence[Point], width: float, *, round_ends: bool = True
    ) -> np.ndarray:
        scaled = [(x * SCALE, y * SCALE) for x, y in points]
        w = max(1, round(width * SCALE))

        def draw(d: ImageDraw.ImageDraw) -> None:
            d.line(scaled, fill=255, width=w, joint="curve")
            if round_ends:
                for x, y in (scaled[0], scaled[-1]):
                    d.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=255)

        return self._draw_mask(draw)

    def limb(self, joints: Sequence[Point], widths: Sequence[float]) -> np.ndarray:
        """A tapering capsule through `joints` (an arm): width varies linearly per segment."""
        mask = np.zeros(self.shape, np.float32)
        for (p0, p1), (w0, w1) in zip(
            zip(joints, joints[1:], strict=False),
            zip(widths, widths[1:], strict=False),
            strict=True,
        ):
            dx, dy = p1[0] - p0[0], p1[1] - p0[1]
            length = math.hypot(dx, dy) or 1.0
            nx, ny = -dy / length, dx / length
            quad = [
                (p0[0] + nx * w0 / 2, p0[1] + ny * w0 / 2),
                (p1[0] + nx * w1 / 2, p1[1] + ny * w1 / 2),
                (p1[0] - nx * w1 / 2, p1[1] - ny * w1 / 2),
                (p0[0] - nx * w0 / 2, p0[1] - ny * w0 / 2),
            ]
            mask = np.maximum(mask, self.polygon(quad))
            mask = np.maximum(mask, self.ellipse(p0[0], p0[1], w0 / 2, w0 / 2))
            mask = np.maximum(mask, self.ellipse(p1[0], p1[1], w1 / 2, w1 / 2))
        return mask

    def text(
        self, xy: Point, text: str, size: float, *, spacing: float = 0.0, stroke: float = 0.0
    ) -> np.ndarray:
        """A text mask centred on `xy`, in Pillow's bundled font (no system font needed)."""
        font = ImageFont.load_default(size * SCALE)
        gap = spacing * SCALE
        widths = [font.getlength(ch) for ch in text]
        total = sum(widths) + gap * (len(text) - 1)
        x = xy[0] * SCALE - total / 2
        y = xy[1] * SCALE
        sw = round(stroke * SCALE)

        def draw(d: ImageDraw.ImageDraw) -> None:
            nonlocal x
            for ch, w in zip(text, widths, strict=True):
                d.text(
                    (x, y), ch, font=font, fill=255, anchor="lm", stroke_width=sw, stroke_fill=255
                )
                x += w + gap

        return self._draw_mask(draw)

    @staticmethod
    def blur(mask: np.ndarray, radius: float) -> np.ndarray:
        layer = Image.fromarray(np.clip(mask * 255, 0, 255).astype(np.uint8), "L")
        layer = layer.filter(ImageFilter.GaussianBlur(radius * SCALE))
        return np.asarray(layer, np.float32) / 255.0

    # -- painting
    def fill(self, mask: np.ndarray, paint: Colour | np.ndarray, opacity: float = 1.0) -> None:
        alpha = (mask * opacity)[..., None]
        colour = np.asarray(paint, np.float32)
        self.pixels = self.pixels * (1 - alpha) + colour * alpha

    def shade(
        self, mask: np.ndarray, depth: float = 0.22, radius: float = 40, light: float = 0.10
    ) -> None:
        """Darken `mask` towards its edges (a soft, rounded look) and light it from the top left."""
        soft = self.blur(mask, radius)
        edge = np.clip((1 - soft) * 2, 0, 1) ** 1.4
        ys, xs = np.mgrid[0 : self.shape[0], 0 : self.shape[1]].astype(np.float32)
        slope = 0.5 - (xs / self.shape[1] * 0.55 + ys / self.shape[0] * 0.45)
        factor = (1 - depth * edge) * (1 + light * slope * 2)
        factor = 1 + (factor - 1) * mask
        self.pixels *= factor[..., None]

    def glow(
        self,
        mask: np.ndarray,
        colour: Colour,
        opacity: float,
        radius: float,
        clip: np.ndarray | None = None,
    ) -> None:
        """A blurred stroke of colour (fold shadows, highlights), optionally clipped to a mask."""
        soft = self.blur(mask, radius)
        if clip is not None:
            soft = soft * clip
        self.fill(soft, colour, opacity)

    def image(self) -> Image.Image:
        big = Image.fromarray(np.clip(self.pixels, 0, 255).astype(np.uint8), "RGB")
        return big.resize((self.width, self.height), Image.Resampling.LANCZOS)


def stripes(
    sketch: Sketch, base: Colour, stripe: Colour, period: float, width: float, offset: float = 0.0
) -> np.ndarray:
    """A full-canvas paint of horizontal stripes (antialiased by the supersampling)."""
    ys = (np.arange(sketch.shape[0], dtype=np.float32) / SCALE + offset) % period
    on = (ys < width).astype(np.float32)[:, None, None]
    paint = np.empty((*sketch.shape, 3), np.float32)
    paint[:] = np.asarray(base, np.float32) * (1 - on) + np.asarray(stripe, np.float32) * on
    return paint


def vertical_gradient(width: int, height: int, top: Colour, bottom: Colour) -> np.ndarray:
    t = np.linspace(0, 1, height * SCALE, dtype=np.float32)[:, None, None]
    column = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    return np.repeat(column, width * SCALE, axis=1)


# --------------------------------------------------------------------------- garment shapes

CX = GARMENT_SIZE / 2


def top_outline(
    *,
    long_sleeves: bool,
    hem_y: float = 700,
    chest: float = 172,
    neck: float = 66,
    back_neck: float = 140,
    shirttail: bool = False,
) -> list[Point]:
    """The flat-lay outline of a tee, sweater or shirt, clockwise from the left neck point."""
    right: list[Point] = [(CX + neck, 122), (CX + 182, 158)]  # neck point, shoulder end
    if long_sleeves:
        right += bezier(
            (CX + 182, 158), (CX + 225, 170), (CX + 262, 330), (CX + 292, 582), steps=24
        )
        right += [(CX + 226, 598)]  # cuff, inner corner
        right += bezier(
            (CX + 226, 598), (CX + 205, 460), (CX + chest + 6, 340), (CX + chest, 292), steps=24
        )
    else:
        right += bezier(
            (CX + 182, 158), (CX + 235, 178), (CX + 282, 240), (CX + 306, 300), steps=20
        )
        right += [(CX + 246, 346)]  # sleeve hem, inner corner
        right += bezier(
            (CX + 246, 346), (CX + 228, 320), (CX + chest + 12, 300), (CX + chest, 288), steps=12
        )
    # The side seam: a slight waist, then out to the hem.
    right += bezier(
        (CX + chest, 292),
        (CX + chest - 10, 460),
        (CX + chest - 4, 600),
        (CX + chest + 4, hem_y),
        steps=24,
    )
    if shirttail:
        hem = bezier(
            (CX + chest + 4, hem_y),
            (CX + chest - 6, hem_y + 40),
            (CX + 90, hem_y + 50),
            (CX, hem_y + 50),
            steps=24,
        )
    else:
        hem = bezier((CX + chest + 4, hem_y), (CX + 90, hem_y + 8), (CX, hem_y + 8), steps=16)
    right += hem
    left = mirror(right, CX)[::-1]
    back = bezier((CX - neck, 122), (CX, back_neck + 8), (CX + neck, 122), steps=24)
    # Clockwise: left half (from the hem centre up to the left neck), back neckline, right half.
    return path(left[:-1], back, right[1:])


def front_neckline(neck: float = 66, depth: float = 190) -> list[Point]:
    return bezier(
        (CX - neck, 122),
        (CX - neck + 8, depth + 4),
        (CX + neck - 8, depth + 4),
        (CX + neck, 122),
        steps=32,
    )


def neck_opening(neck: float = 66, depth: float = 190, back_neck: float = 140) -> list[Point]:
    """The visible inside of the back, between the back neckline and the front neckline."""
    back = bezier((CX - neck, 122), (CX, back_neck + 8), (CX + neck, 122), steps=24)
    return path(back, front_neckline(neck, depth)[::-1])


def dashed(points: Sequence[Point], dash: float, gap: float) -> list[list[Point]]:
    """Split a polyline into dashes (for topstitching)."""
    dashes: list[list[Point]] = []
    current: list[Point] = []
    travelled, drawing = 0.0, True
    limit = dash
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        seg = math.hypot(x1 - x0, y1 - y0)
        pos = 0.0
        while seg - pos > 1e-6:
            step = min(limit - travelled, seg - pos)
            t0, t1 = pos / seg, (pos + step) / seg
            if drawing:
                if not current:
                    current.append((x0 + (x1 - x0) * t0, y0 + (y1 - y0) * t0))
                current.append((x0 + (x1 - x0) * t1, y0 + (y1 - y0) * t1))
            pos += step
            travelled += step
            if travelled >= limit - 1e-6:
                if drawing and current:
                    dashes.append(current)
                current = []
                drawing = not drawing
                travelled = 0.0
                limit = dash if drawing else gap
    if current:
        dashes.append(current)
    return dashes


def stitch(
    sketch: Sketch,
    points: Sequence[Point],
    colour: Colour,
    clip: np.ndarray,
    width: float = 2.2,
    dash: float = 9,
    gap: float = 6,
    opacity: float = 0.9,
) -> None:
    mask = np.zeros(sketch.shape, np.float32)
    for piece in dashed(points, dash, gap):
        mask = np.maximum(mask, sketch.lines(piece, width, round_ends=False))
    sketch.fill(mask * clip, colour, opacity)


def rib_texture(
    sketch: Sketch, mask: np.ndarray, colour: Colour, spacing: float = 7, opacity: float = 0.35
) -> None:
    """Fine vertical lines: knitted ribbing on cuffs, hems and collars."""
    xs = (np.arange(sketch.shape[1], dtype=np.float32) / SCALE) % spacing
    ridges = (np.abs(xs - spacing / 2) < spacing * 0.18).astype(np.float32)[None, :]
    sketch.fill(mask * ridges, colour, opacity)


def band(sketch: Sketch, outline: Sequence[Point], y0: float, y1: float) -> np.ndarray:
    """The part of a garment's outline between two heights (a rib band)."""
    strip = sketch.polygon([(0, y0), (GARMENT_SIZE, y0), (GARMENT_SIZE, y1), (0, y1)])
    return sketch.polygon(outline) * strip


def fold(
    sketch: Sketch,
    body: np.ndarray,
    points: Sequence[Point],
    *,
    dark: bool = True,
    width: float = 10,
    opacity: float = 0.16,
    radius: float = 7,
) -> None:
    """A soft crease: a blurred dark (or light) stroke clipped to the garment."""
    colour = (0, 0, 0) if dark else (255, 255, 255)
    sketch.glow(sketch.lines(points, width), colour, opacity, radius, clip=body)


def new_garment() -> Sketch:
    return Sketch(GARMENT_SIZE, GARMENT_SIZE, GARMENT_BACKDROP)


def tee_folds(sketch: Sketch, body: np.ndarray, long_sleeves: bool = False) -> None:
    fold(sketch, body, bezier((CX - 150, 300), (CX - 120, 450), (CX - 135, 620)), opacity=0.10)
    fold(sketch, body, bezier((CX + 120, 330), (CX + 95, 470), (CX + 130, 640)), opacity=0.10)
    fold(sketch, body, bezier((CX - 60, 560), (CX - 10, 600), (CX + 70, 590)), opacity=0.08)
    fold(
        sketch,
        body,
        bezier((CX - 100, 250), (CX - 60, 380), (CX - 80, 520)),
        dark=False,
        width=26,
        opacity=0.10,
        radius=16,
    )
    if long_sleeves:
        for side in (-1, 1):
            fold(sketch, body, [(CX + side * 232, 300), (CX + side * 250, 420)], opacity=0.10)


# --------------------------------------------------------------------------- garments


def striped_tee() -> Image.Image:
    sketch = new_garment()
    outline = top_outline(long_sleeves=False)
    body = sketch.polygon(outline)
    navy, white = (31, 44, 86), (247, 246, 240)
    sketch.fill(body, stripes(sketch, white, navy, period=38, width=15, offset=-8))
    inside = sketch.polygon(neck_opening())
    sketch.fill(inside, mix(white, (0, 0, 0), 0.16))
    collar = sketch.lines(front_neckline(), 16)
    sketch.fill(collar * body, white)
    rib_texture(sketch, collar * body, (200, 200, 196), spacing=5, opacity=0.5)
    hem = band(sketch, outline, 676, 720)
    sketch.fill(hem, white)
    for side in (-1, 1):
        cuff = (
            sketch.polygon(
                [
                    (CX + side * 300, 282),
                    (CX + side * 330, 300),
                    (CX + side * 255, 360),
                    (CX + side * 236, 330),
                ]
            )
            * body
        )
        sketch.fill(cuff, white)
    tee_folds(sketch, body)
    sketch.shade(body, depth=0.20)
    return sketch.image()


def red_hoodie() -> Image.Image:
    sketch = new_garment()
    red = (196, 38, 46)
    lining = (150, 26, 34)
    # The hood lies behind the shoulders.
    hood_outline = path(
        bezier((CX - 150, 190), (CX - 170, 60), (CX - 80, 28), (CX, 28), steps=24),
        bezier((CX, 28), (CX + 80, 28), (CX + 170, 60), (CX + 150, 190), steps=24),
    )
    hood = sketch.polygon(hood_outline)
    sketch.fill(hood, red)
    sketch.shade(hood, depth=0.28, radius=30)
    outline = top_outline(long_sleeves=True, hem_y=690, chest=178, neck=74, back_neck=132)
    body = sketch.polygon(outline)
    sketch.fill(body, red)
    # Inside of the hood, seen through the neck opening.
    opening = sketch.polygon(
        path(
            bezier((CX - 74, 122), (CX - 78, 62), (CX + 78, 62), (CX + 74, 122), steps=30),
            bezier((CX + 74, 122), (CX + 60, 215), (CX - 60, 215), (CX - 74, 122), steps=30),
        )
    )
    sketch.fill(opening, lining)
    sketch.glow(opening, (0, 0, 0), 0.35, 18, clip=opening)
    # The hood's front edges crossing at the neck.
    for side in (-1, 1):
        edge = bezier((CX + side * 76, 118), (CX + side * 70, 190), (CX - side * 10, 214), steps=20)
        sketch.fill(sketch.lines(edge, 13), mix(red, (255, 255, 255), 0.06))
        fold(sketch, body, edge, width=16, opacity=0.28, radius=5)
    # Ribbed cuffs and waistband.
    for side in (-1, 1):
        cuff = (
            sketch.polygon(
                [
                    (CX + side * 300, 540),
                    (CX + side * 310, 600),
                    (CX + side * 215, 612),
                    (CX + side * 212, 552),
                ]
            )
            * body
        )
        sketch.fill(cuff, mix(red, (0, 0, 0), 0.06))
        rib_texture(sketch, cuff, (0, 0, 0), opacity=0.18)
        stitch(
            sketch,
            [(CX + side * 300, 540), (CX + side * 212, 552)],
            lining,
            body,
            width=3,
            dash=100,
            gap=1,
        )
    waist = band(sketch, outline, 640, 720)
    sketch.fill(waist, mix(red, (0, 0, 0), 0.06))
    rib_texture(sketch, waist, (0, 0, 0), opacity=0.18)
    stitch(sketch, [(CX - 190, 640), (CX + 190, 640)], lining, body, width=3, dash=100, gap=1)
    # Kangaroo pocket with curved openings.
    pocket_outline = path(
        (CX - 115, 470),
        (CX + 115, 470),
        bezier((CX + 115, 470), (CX + 150, 540), (CX + 170, 610), steps=16),
        (CX + 170, 628),
        (CX - 170, 628),
        bezier((CX - 170, 610), (CX - 150, 540), (CX - 115, 470), steps=16),
    )
    pocket = sketch.polygon(pocket_outline)
    sketch.glow(
        sketch.lines(pocket_outline + [pocket_outline[0]], 6), (0, 0, 0), 0.30, 4, clip=body
    )
    stitch(sketch, [(CX - 108, 480), (CX + 108, 480)], lining, pocket, width=2.4)
    for side in (-1, 1):
        opening_edge = bezier(
            (CX + side * 115, 470), (CX + side * 150, 540), (CX + side * 170, 610), steps=16
        )
        fold(sketch, body, opening_edge, width=8, opacity=0.35, radius=3)
    # A chest print: a sun over two peaks in a ring, off-white, like screen print.
    ink = (246, 238, 222)
    ring = np.clip(sketch.ellipse(CX, 335, 74, 74) - sketch.ellipse(CX, 335, 64, 64), 0, 1)
    sun = sketch.ellipse(CX + 22, 315, 17, 17)
    peaks = sketch.polygon(
        [(CX - 58, 372), (CX - 20, 318), (CX + 2, 345), (CX + 22, 330), (CX + 58, 372)]
    ) * sketch.ellipse(CX, 335, 64, 64)
    sketch.fill(np.maximum(np.maximum(ring, sun), peaks), ink)
    sketch.fill(sketch.text((CX, 438), "MIRRAGO", 27, spacing=6, stroke=0.6), ink)
    # Drawstrings with metal tips.
    for side in (-1, 1):
        string = bezier(
            (CX + side * 30, 200), (CX + side * 35, 225), (CX + side * 37, 246), steps=16
        )
        sketch.fill(sketch.lines(string, 7), (240, 236, 228))
        sketch.fill(
            sketch.lines([(CX + side * 37, 240), (CX + side * 37.5, 256)], 8), (200, 200, 204)
        )
    tee_folds(sketch, body, long_sleeves=True)
    sketch.shade(body, depth=0.24)
    return sketch.image()


def denim_shirt() -> Image.Image:
    sketch = new_garment()
    denim = (74, 110, 160)
    outline = top_outline(
        long_sleeves=True, hem_y=660, chest=170, neck=58, back_neck=118, shirttail=True
    )
    body = sketch.polygon(outline)
    # Twill: fine diagonal lines, slightly lighter than the base.
    ys, xs = np.mgrid[0 : sketch.shape[0], 0 : sketch.shape[1]].astype(np.float32)
    twill = ((xs + ys) / SCALE % 5 < 1.6).astype(np.float32)
    paint = np.empty((*sketch.shape, 3), np.float32)
    paint[:] = np.asarray(denim, np.float32)
    paint += twill[..., None] * np.asarray((14, 16, 18), np.float32)
    sketch.fill(body, paint)
    thread = (214, 160, 82)  # classic contrast topstitching
    # Collar stand and two pointed collar leaves.
    stand = sketch.polygon(
        path(
            bezier((CX - 62, 118), (CX, 136), (CX + 62, 118), steps=20),
            bezier(
                (CX + 62, 118), (CX + 56, 176), (CX, 188), (CX - 56, 176), (CX - 62, 118), steps=24
            )[1:],
        )
    )
    sketch.fill(stand, mix(denim, (0, 0, 0), 0.35))
    for side in (-1, 1):
        leaf = [
            (CX + side * 64, 112),
            (CX + side * 108, 148),
            (CX + side * 86, 236),
            (CX + side * 4, 192),
        ]
        leaf_mask = sketch.polygon(leaf)
        sketch.fill(leaf_mask, paint)
        sketch.shade(leaf_mask, depth=0.18, radius=12, light=0.0)
        sketch.glow(sketch.lines(leaf[1:], 6), (0, 0, 0), 0.25, 4)
        inset = [(CX + side * 100, 152), (CX + side * 81, 224), (CX + side * 12, 190)]
        stitch(sketch, inset, thread, leaf_mask, width=2.0, dash=7, gap=5)
    # Button placket with pearl snaps.
    placket = sketch.polygon([(CX - 17, 190), (CX + 17, 190), (CX + 17, 720), (CX - 17, 720)])
    placket *= body
    sketch.glow(sketch.lines([(CX - 18, 200), (CX - 18, 712)], 4), (0, 0, 0), 0.25, 3, clip=body)
    for x in (CX - 12, CX + 12):
        stitch(sketch, [(x, 200), (x, 706)], thread, placket, width=1.8, dash=7, gap=5)
    for y in (226, 306, 386, 466, 546, 626):
        sketch.glow(sketch.ellipse(CX + 1.5, y + 2, 9, 9), (0, 0, 0), 0.35, 2)
        sketch.fill(sketch.ellipse(CX, y, 9, 9), (236, 232, 222))
        sketch.fill(sketch.ellipse(CX, y, 4, 4), (206, 200, 186))
    # Chest pockets with pointed flaps.
    for side in (-1, 1):
        px = CX + side * 92
        pocket = [(px - 46, 268), (px + 46, 268), (px + 46, 360), (px, 374), (px - 46, 360)]
        pocket_mask = sketch.polygon(pocket)
        sketch.glow(sketch.lines(pocket + [pocket[0]], 4), (0, 0, 0), 0.25, 3)
        inner = [(px - 40, 276), (px - 40, 354), (px, 366), (px + 40, 354), (px + 40, 276)]
        stitch(sketch, inner, thread, pocket_mask, width=1.8, dash=7, gap=5)
        flap = [(px - 50, 254), (px + 50, 254), (px + 50, 286), (px, 300), (px - 50, 286)]
        flap_mask = sketch.polygon(flap)
        sketch.glow(sketch.lines(flap[1:] + [flap[0]], 6), (0, 0, 0), 0.35, 4)
        sketch.fill(flap_mask, paint)
        sketch.shade(flap_mask, depth=0.12, radius=6, light=0.0)
        stitch(
            sketch,
            [(px - 44, 282), (px, 294), (px + 44, 282)],
            thread,
            flap_mask,
            width=1.8,
            dash=7,
            gap=5,
        )
        sketch.fill(sketch.ellipse(px, 288, 5.5, 5.5), (236, 232, 222))
    # Cuffs with a button, and a yoke seam across the shoulders.
    for side in (-1, 1):
        cuff_line = [(CX + side * 282, 528), (CX + side * 214, 540)]
        sketch.glow(sketch.lines(cuff_line, 5), (0, 0, 0), 0.3, 3, clip=body)
        stitch(
            sketch,
            [(CX + side * 284, 540), (CX + side * 220, 551)],
            thread,
            body,
            width=1.8,
            dash=7,
            gap=5,
        )
        sketch.fill(sketch.ellipse(CX + side * 252, 568, 6, 6), (236, 232, 222))
        yoke = bezier(
            (CX + side * 58, 176), (CX + side * 120, 200), (CX + side * 180, 176), steps=12
        )
        stitch(sketch, yoke, thread, body, width=1.8, dash=7, gap=5)
    tee_folds(sketch, body, long_sleeves=True)
    sketch.shade(body, depth=0.22)
    return sketch.image()


def circle(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, colour: Colour) -> None:
    """A filled circle on a supersampled layer, in design units."""
    draw.ellipse(((x - r) * SCALE, (y - r) * SCALE, (x + r) * SCALE, (y + r) * SCALE), fill=colour)


def floral_print(sketch: Sketch, base: Colour) -> np.ndarray:
    """Small five-petal flowers with leaves, scattered on a jittered grid (seeded)."""
    layer = Image.new("RGB", (sketch.shape[1], sketch.shape[0]), base)
    draw = ImageDraw.Draw(layer)
    rng = random.Random(7)
    petals = [(249, 248, 242), (246, 196, 206), (252, 226, 150)]
    leaf_green = (74, 130, 96)
    for row in range(22):
        for col in range(17):
            x = col * 50 + (25 if row % 2 else 0) + rng.uniform(-9, 9)
            y = row * 38 + rng.uniform(-7, 7)
            petal, turn, size = rng.choice(petals), rng.uniform(0, math.tau), rng.uniform(0.8, 1.1)
            for k in range(2):
                a = turn + k * 2.2 + 0.9
                circle(
                    draw,
                    x + math.cos(a) * 12 * size,
                    y + math.sin(a) * 12 * size,
                    4.6 * size,
                    leaf_green,
                )
            for k in range(5):
                a = turn + k * math.tau / 5
                circle(
                    draw, x + math.cos(a) * 6 * size, y + math.sin(a) * 6 * size, 4.8 * size, petal
                )
            circle(draw, x, y, 3 * size, (236, 168, 60))
    return np.asarray(layer, np.float32)


def floral_dress() -> Image.Image:
    sketch = new_garment()
    base = (116, 170, 214)
    cx = CX
    right = path(
        bezier((cx + 100, 176), (cx + 118, 198), (cx + 120, 226), (cx + 114, 250), steps=10),
        bezier((cx + 114, 250), (cx + 104, 300), (cx + 96, 340), (cx + 94, 372), steps=12),
        bezier((cx + 94, 372), (cx + 180, 520), (cx + 250, 640), (cx + 286, 736), steps=24),
        bezier((cx + 286, 736), (cx + 150, 774), (cx, 778), steps=20),
    )
    # A sweetheart neckline: two shallow curves meeting at the centre front.
    neckline = bezier((cx + 100, 176), (cx + 72, 150), (cx + 20, 160), (cx, 204), steps=20)
    outline = path(mirror(neckline, cx), neckline[::-1], right[1:], mirror(right, cx)[::-1])
    body = sketch.polygon(outline)
    straps = np.zeros(sketch.shape, np.float32)
    for side in (-1, 1):
        strap = sketch.lines([(cx + side * 62, 52), (cx + side * 86, 176)], 14)
        straps = np.maximum(straps, strap)
    dress = np.maximum(body, straps)
    sketch.fill(dress, floral_print(sketch, base))
    sketch.glow(sketch.lines(neckline, 5), (0, 0, 0), 0.18, 3, clip=body)
    sketch.glow(sketch.lines(mirror(neckline, cx), 5), (0, 0, 0), 0.18, 3, clip=body)
    # A sash at the waist, tied in a bow.
    sash = sketch.polygon([(cx - 120, 354), (cx + 120, 354), (cx + 120, 386), (cx - 120, 386)])
    sash *= body
    navy = (33, 52, 96)
    sketch.fill(sash, navy)
    bow = np.maximum(
        sketch.polygon([(cx + 30, 370), (cx + 78, 348), (cx + 82, 394)]),
        sketch.polygon([(cx + 30, 370), (cx - 14, 350), (cx - 18, 392)]),
    )
    tails = np.maximum(
        sketch.lines([(cx + 34, 376), (cx + 48, 452)], 12),
        sketch.lines([(cx + 26, 376), (cx + 4, 446)], 12),
    )
    sketch.fill(np.maximum(bow, tails), navy)
    sketch.fill(sketch.ellipse(cx + 30, 370, 11, 11), mix(navy, (0, 0, 0), 0.2))
    sketch.shade(np.maximum(bow, tails), depth=0.2, radius=6, light=0.0)
    # Gathered folds fanning out from the waist.
    for k in range(-4, 5):
        x0 = cx + k * 20
        fold(
            sketch,
            body,
            bezier((x0, 392), (x0 + k * 10, 550), (x0 + k * 24, 742)),
            width=12,
            opacity=0.16,
            radius=9,
        )
        fold(
            sketch,
            body,
            bezier((x0 + 10, 400), (x0 + 10 + k * 12, 560), (x0 + 12 + k * 26, 742)),
            dark=False,
            width=10,
            opacity=0.10,
            radius=9,
        )
    sketch.shade(body, depth=0.20, radius=30)
    sketch.shade(straps * (1 - body), depth=0.15, radius=4, light=0.0)
    return sketch.image()


def black_logo_tee() -> Image.Image:
    sketch = new_garment()
    black = (40, 40, 44)
    outline = top_outline(long_sleeves=False)
    body = sketch.polygon(outline)
    sketch.fill(body, black)
    sketch.fill(sketch.polygon(neck_opening()), (24, 24, 27))
    collar = sketch.lines(front_neckline(), 16) * body
    sketch.fill(collar, (48, 48, 52))
    rib_texture(sketch, collar, (0, 0, 0), spacing=5, opacity=0.35)
    # The logo: a ring around a monogram, and the wordmark below.
    white = (240, 238, 232)
    ring = np.clip(sketch.ellipse(CX, 300, 58, 58) - sketch.ellipse(CX, 300, 50, 50), 0, 1)
    monogram = sketch.lines(
        [(CX - 24, 324), (CX - 24, 276), (CX, 306), (CX + 24, 276), (CX + 24, 324)],
        9,
        round_ends=False,
    )
    sketch.fill(np.maximum(ring, monogram), white)
    sketch.fill(sketch.text((CX, 392), "MIRRAGO", 30, spacing=9, stroke=0.7), white)
    sketch.fill(sketch.text((CX, 424), "STUDIO", 16, spacing=10), (170, 170, 170))
    tee_folds(sketch, body)
    fold(
        sketch,
        body,
        bezier((CX + 90, 260), (CX + 70, 420), (CX + 110, 600)),
        dark=False,
        width=30,
        opacity=0.07,
        radius=18,
    )
    sketch.shade(body, depth=0.35, light=0.25)
    return sketch.image()


def green_sweater() -> Image.Image:
    sketch = new_garment()
    green = (44, 104, 76)
    cream = (238, 228, 204)
    berry = (168, 48, 58)
    outline = top_outline(long_sleeves=True, hem_y=690, chest=178, neck=62, back_neck=132)
    body = sketch.polygon(outline)
    sketch.fill(body, green)
    # Stockinette: rows of small V stitches.
    knit = Sketch(GARMENT_SIZE, GARMENT_SIZE, (0, 0, 0))
    layer = Image.new("L", (knit.shape[1], knit.shape[0]), 0)
    draw = ImageDraw.Draw(layer)
    for row in range(0, GARMENT_SIZE, 9):
        for col in range(0, GARMENT_SIZE, 8):
            x, y = col * SCALE, row * SCALE
            draw.line(
                [(x, y), (x + 4 * SCALE, y + 6 * SCALE), (x + 8 * SCALE, y)], fill=255, width=SCALE
            )
    stitches = np.asarray(layer, np.float32) / 255.0
    sketch.fill(stitches * body, (0, 0, 0), 0.10)
    # A Fair Isle band across the chest and sleeves: borders, diamonds, small crosses.
    motif = np.zeros(sketch.shape, np.float32)
    accent = np.zeros(sketch.shape, np.float32)
    for y in (246, 332):
        motif = np.maximum(motif, sketch.polygon([(0, y), (800, y), (800, y + 6), (0, y + 6)]))
    for y in (258, 320):
        for x in range(0, 800, 16):
            accent = np.maximum(accent, sketch.ellipse(x + 8, y, 3.2, 3.2))
    for x in range(-20, 840, 48):
        diamond = [(x, 289), (x + 18, 271), (x + 36, 289), (x + 18, 307)]
        hole = [(x + 9, 289), (x + 18, 280), (x + 27, 289), (x + 18, 298)]
        motif = np.maximum(motif, np.clip(sketch.polygon(diamond) - sketch.polygon(hole), 0, 1))
        accent = np.maximum(accent, sketch.ellipse(x + 18, 289, 4, 4))
        cross = [(x + 42, 281), (x + 42, 297)]
        motif = np.maximum(motif, sketch.lines(cross, 4))
        motif = np.maximum(motif, sketch.lines([(x + 34, 289), (x + 50, 289)], 4))
    sketch.fill(motif * body, cream)
    sketch.fill(accent * body, berry)
    # Ribbed crew neck, cuffs and hem.
    sketch.fill(
        sketch.polygon(neck_opening(neck=62, depth=176, back_neck=132)), mix(green, (0, 0, 0), 0.30)
    )
    collar = sketch.lines(front_neckline(neck=62, depth=176), 22) * body
    sketch.fill(collar, mix(green, (255, 255, 255), 0.04))
    rib_texture(sketch, collar, (0, 0, 0), spacing=6, opacity=0.25)
    for side in (-1, 1):
        cuff = (
            sketch.polygon(
                [
                    (CX + side * 296, 530),
                    (CX + side * 310, 604),
                    (CX + side * 215, 614),
                    (CX + side * 210, 545),
                ]
            )
            * body
        )
        sketch.fill(cuff, mix(green, (255, 255, 255), 0.04))
        rib_texture(sketch, cuff, (0, 0, 0), spacing=6, opacity=0.25)
        fold(
            sketch,
            body,
            [(CX + side * 296, 532), (CX + side * 210, 546)],
            width=5,
            opacity=0.3,
            radius=3,
        )
    hem = band(sketch, outline, 646, 720)
    sketch.fill(hem, mix(green, (255, 255, 255), 0.04))
    rib_texture(sketch, hem, (0, 0, 0), spacing=6, opacity=0.25)
    fold(sketch, body, [(CX - 185, 646), (CX + 185, 646)], width=5, opacity=0.3, radius=3)
    tee_folds(sketch, body, long_sleeves=True)
    sketch.shade(body, depth=0.24)
    return sketch.image()


GARMENTS: dict[str, Callable[[], Image.Image]] = {
    "striped-tee": striped_tee,
    "red-hoodie": red_hoodie,
    "denim-shirt": denim_shirt,
    "floral-dress": floral_dress,
    "black-logo-tee": black_logo_tee,
    "green-sweater": green_sweater,
}


# --------------------------------------------------------------------------- illustrated persons


@dataclass(frozen=True)
class Figure:
    skin: Colour
    hair: Colour
    hair_style: str  # "long", "short", "bob", "curly", "bun"
    top: Colour
    trousers: Colour
    backdrop: tuple[Colour, Colour]
    pose: str  # "relaxed", "hips", "one-hip"
    lips: Colour
    eyes: Colour = (46, 32, 26)


FIGURES: dict[str, Figure] = {
    "studio-ana": Figure(
        skin=(240, 204, 178),
        hair=(118, 62, 38),
        hair_style="long",
        top=(246, 245, 241),
        trousers=(60, 82, 124),
        backdrop=((246, 238, 228), (218, 200, 184)),
        pose="relaxed",
        lips=(200, 112, 108),
    ),
    "studio-kofi": Figure(
        skin=(116, 76, 54),
        hair=(28, 24, 24),
        hair_style="short",
        top=(222, 222, 218),
        trousers=(46, 48, 56),
        backdrop=((230, 238, 244), (178, 194, 210)),
        pose="hips",
        lips=(124, 70, 62),
    ),
    "studio-mei": Figure(
        skin=(244, 214, 188),
        hair=(34, 28, 30),
        hair_style="bob",
        top=(250, 248, 244),
        trousers=(150, 126, 98),
        backdrop=((234, 242, 232), (188, 206, 188)),
        pose="one-hip",
        lips=(208, 118, 120),
    ),
    "studio-sam": Figure(
        skin=(180, 126, 90),
        hair=(44, 32, 26),
        hair_style="curly",
        top=(236, 236, 240),
        trousers=(92, 100, 112),
        backdrop=((244, 232, 232), (208, 184, 188)),
        pose="relaxed",
        lips=(164, 90, 80),
    ),
}

PX = PERSON_SIZE[0] / 2  # the figure's centre line
HEAD_CY, HEAD_RX, HEAD_RY = 176, 66, 84
SHOULDER_Y = 318  # where the sandbox's simple renderer puts a garment's top (30 % down)


def head_outline(cx: float, cy: float, rx: float, ry: float) -> list[Point]:
    """An egg: the lower half narrows towards the chin."""
    points = []
    for i in range(120):
        t = math.tau * i / 120
        below = max(0.0, math.sin(t))
        points.append((cx + rx * math.cos(t) * (1 - 0.26 * below**2), cy + ry * math.sin(t)))
    return points


def arm_joints(pose: str, side: int) -> list[Point]:
    """Shoulder, elbow, wrist and fingertips for one arm (side -1 is the viewer's left)."""
    if pose == "hips" or (pose == "one-hip" and side == 1):
        return [
            (PX + side * 150, 352),
            (PX + side * 226, 516),
            (PX + side * 150, 628),
            (PX + side * 116, 650),
        ]
    return [
        (PX + side * 152, 352),
        (PX + side * 178, 530),
        (PX + side * 186, 708),
        (PX + side * 188, 790),
    ]


def torso_outline() -> list[Point]:
    right = path(
        bezier((PX + 34, 286), (PX + 80, 300), (PX + 140, 306), (PX + 162, 330), steps=16),
        bezier((PX + 162, 330), (PX + 176, 346), (PX + 176, 372), (PX + 168, 400), steps=10),
        bezier((PX + 150, 420), (PX + 140, 500), (PX + 122, 560), (PX + 126, 620), steps=16),
        bezier((PX + 126, 620), (PX + 130, 660), (PX + 140, 690), (PX + 142, 712), steps=10),
    )
    neckline = bezier((PX + 34, 286), (PX + 26, 330), (PX - 26, 330), (PX - 34, 286), steps=20)
    return path(right, mirror(right, PX)[::-1], neckline[::-1])


def sleeve_outline(joints: Sequence[Point], side: int) -> list[Point]:
    """A short sleeve around the upper arm, its hem square to the arm."""
    (sx, sy), (ex, ey) = joints[0], joints[1]
    hx, hy = sx + (ex - sx) * 0.42, sy + (ey - sy) * 0.42  # hem centre
    length = math.hypot(ex - sx, ey - sy)
    nx, ny = -(ey - sy) / length * 37, (ex - sx) / length * 37
    ends = sorted([(hx + nx, hy + ny), (hx - nx, hy - ny)], key=lambda p: abs(p[0] - PX))
    inner, outer = ends
    return path(
        (PX + side * 118, 310),
        bezier(
            (PX + side * 118, 310),
            (sx + side * 26, sy - 40),
            (sx + side * 44, sy - 6),
            outer,
            steps=16,
        ),
        inner,
        (PX + side * 128, 430),
    )


def hand_mask(sketch: Sketch, joints: Sequence[Point], side: int, pose: str) -> np.ndarray:
    """A relaxed hand: palm and fingers, and for a hanging arm a thumb towards the body."""
    (wx, wy), (tx, ty) = joints[2], joints[3]
    mid = (wx + (tx - wx) * 0.45, wy + (ty - wy) * 0.45)
    hand = np.maximum(
        sketch.limb([(wx, wy), mid], [36, 38]), sketch.limb([mid, (tx, ty)], [38, 24])
    )
    if arm_joints(pose, side)[3][1] > 700:  # a hanging arm: the thumb shows on the inner side
        thumb = sketch.limb([(wx - side * 12, wy + 10), (wx - side * 19, wy + 46)], [16, 12])
        hand = np.maximum(hand, thumb)
    return hand


def shift(mask: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Move a mask by design units, filling with zeros (no wrap-around)."""
    dy, dx = round(dy * SCALE), round(dx * SCALE)
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def person_sketch(figure: Figure) -> Sketch:
    width, height = PERSON_SIZE
    sketch = Sketch(width, height, vertical_gradient(width, height, *figure.backdrop))
    sketch.glow(sketch.ellipse(PX, 380, 260, 360), (255, 255, 255), 0.45, 110)

    head = sketch.polygon(head_outline(PX, HEAD_CY, HEAD_RX, HEAD_RY))
    ears = np.maximum(
        sketch.ellipse(PX - HEAD_RX + 2, HEAD_CY + 8, 12, 20),
        sketch.ellipse(PX + HEAD_RX - 2, HEAD_CY + 8, 12, 20),
    )
    neck = sketch.polygon(
        path(
            [(PX - 27, 220)],
            bezier((PX - 27, 262), (PX - 29, 292), (PX - 44, 306), steps=8),
            [(PX - 44, 340), (PX + 44, 340), (PX + 44, 306)],
            bezier((PX + 29, 292), (PX + 27, 262), steps=4),
            [(PX + 27, 220)],
        )
    )
    torso = sketch.polygon(torso_outline())
    joints = {side: arm_joints(figure.pose, side) for side in (-1, 1)}
    arms = {side: sketch.limb(joints[side][:3], [54, 44, 34]) for side in (-1, 1)}
    hands = {side: hand_mask(sketch, joints[side], side, figure.pose) for side in (-1, 1)}
    sleeves = {side: sketch.polygon(sleeve_outline(joints[side], side)) for side in (-1, 1)}
    top = np.maximum.reduce([torso, sleeves[-1], sleeves[1]])
    trousers = sketch.polygon(
        [
            (PX - 134, 690),
            (PX + 134, 690),
            (PX + 150, 860),
            (PX + 154, 1030),
            (PX - 154, 1030),
            (PX - 150, 860),
        ]
    )
    legs_gap = sketch.polygon([(PX - 6, 1030), (PX, 900), (PX + 6, 1030)])
    trousers = np.clip(trousers - legs_gap, 0, 1)

    silhouette = np.maximum.reduce(
        [head, ears, neck, top, trousers, *arms.values(), *hands.values()]
    )
    # A soft cast shadow on the backdrop, down and to the right (light from the upper left).
    shadow = shift(sketch.blur(silhouette, 24), 16, 22)
    sketch.fill(shadow * (1 - silhouette), mix(figure.backdrop[1], (0, 0, 0), 0.5), 0.30)

    draw_back_hair(sketch, figure)
    skin_shadow = mix(figure.skin, (70, 34, 24), 0.35)
    sketch.fill(neck, figure.skin)
    sketch.glow(sketch.ellipse(PX, 238, 56, 26), skin_shadow, 0.7, 9, clip=neck)
    sketch.shade(neck, depth=0.22, radius=10, light=0.0)

    sketch.fill(trousers, figure.trousers)
    sketch.glow(sketch.lines([(PX, 760), (PX, 900)], 3), (0, 0, 0), 0.35, 2, clip=trousers)
    sketch.shade(trousers, depth=0.28, radius=28)

    sketch.fill(top, figure.top)
    top_shade = mix(figure.top, (40, 40, 60), 0.5)
    for side in (-1, 1):
        # Creases: where the sleeve meets the body, and a drape down the side.
        fold(
            sketch,
            top,
            bezier((PX + side * 120, 314), (PX + side * 122, 370), (PX + side * 140, 424)),
            width=5,
            opacity=0.16,
            radius=4,
        )
        fold(
            sketch,
            torso,
            bezier((PX + side * 100, 450), (PX + side * 84, 560), (PX + side * 110, 680)),
            width=14,
            opacity=0.10,
            radius=12,
        )
    sketch.glow(
        sketch.lines(bezier((PX - 34, 288), (PX, 334), (PX + 34, 288), steps=20), 9),
        top_shade,
        0.35,
        3,
        clip=torso,
    )
    fold(
        sketch,
        torso,
        bezier((PX - 80, 360), (PX - 40, 460), (PX - 60, 580)),
        dark=False,
        width=30,
        opacity=0.12,
        radius=18,
    )
    sketch.glow(
        sketch.lines([(PX - 140, 700), (PX + 140, 700)], 3), top_shade, 0.35, 1.5, clip=torso
    )
    sketch.shade(top, depth=0.20, radius=34)

    # Arms in front of the body, below the sleeves.
    for side in (-1, 1):
        visible = np.clip(np.maximum(arms[side], hands[side]) - sleeves[side], 0, 1)
        sketch.glow(shift(visible, 4, 6), (0, 0, 0), 0.20, 8, clip=top * (1 - visible))
        sketch.fill(visible, figure.skin)
        sketch.shade(visible, depth=0.26, radius=12)
        sketch.glow(
            sketch.lines([joints[side][2], joints[side][2]], 30), skin_shadow, 0.12, 6, clip=visible
        )

    sketch.fill(head, figure.skin)
    sketch.fill(ears * (1 - head), mix(figure.skin, (150, 70, 60), 0.10))
    sketch.shade(np.maximum(head, ears), depth=0.18, radius=16)
    draw_face(sketch, figure)
    draw_front_hair(sketch, figure)
    return sketch


def draw_back_hair(sketch: Sketch, figure: Figure) -> None:
    colour = mix(figure.hair, (0, 0, 0), 0.22)
    if figure.hair_style == "long":
        back = np.maximum(
            sketch.ellipse(PX, HEAD_CY - 6, HEAD_RX + 16, HEAD_RY + 8),
            sketch.polygon(
                path(
                    [(PX - HEAD_RX - 16, HEAD_CY)],
                    bezier(
                        (PX - HEAD_RX - 18, 300), (PX - HEAD_RX - 30, 360), (PX - 60, 372), steps=12
                    ),
                    bezier(
                        (PX + 60, 372), (PX + HEAD_RX + 30, 360), (PX + HEAD_RX + 18, 300), steps=12
                    ),
                    [(PX + HEAD_RX + 16, HEAD_CY)],
                )
            ),
        )
        sketch.fill(back, colour)
        sketch.shade(back, depth=0.3, radius=16)
    elif figure.hair_style == "bob":
        back = sketch.polygon(
            path(
                bezier(
                    (PX - HEAD_RX - 18, HEAD_CY + 66),
                    (PX - HEAD_RX - 34, HEAD_CY - 150),
                    (PX + HEAD_RX + 34, HEAD_CY - 150),
                    (PX + HEAD_RX + 18, HEAD_CY + 66),
                    steps=40,
                ),
            )
        )
        sketch.fill(back, colour)
        sketch.shade(back, depth=0.3, radius=14)


def hair_window(hairline: float, part: float) -> np.ndarray:
    """The face left free by the hair: below a hairline that sweeps from a side parting."""
    return [  # type: ignore[return-value]
        (PX - HEAD_RX + 6, HEAD_CY + 140),
        *bezier(
            (PX - HEAD_RX + 6, HEAD_CY + 30),
            (PX - HEAD_RX + 2, hairline + 12),
            (PX + part - 30, hairline - 6),
            (PX + part, hairline - 4),
            steps=20,
        ),
        *bezier(
            (PX + part, hairline - 4),
            (PX + part + 40, hairline + 8),
            (PX + HEAD_RX - 2, hairline + 24),
            (PX + HEAD_RX - 6, HEAD_CY + 30),
            steps=20,
        ),
        (PX + HEAD_RX - 6, HEAD_CY + 140),
    ]


def draw_front_hair(sketch: Sketch, figure: Figure) -> None:
    style = figure.hair_style
    top = HEAD_CY - HEAD_RY
    if style == "curly":
        cap = np.zeros(sketch.shape, np.float32)
        rng = random.Random(11)
        for k in range(30):
            a = math.pi * (0.92 + 1.16 * k / 29)
            r = rng.uniform(20, 27)
            cap = np.maximum(
                cap,
                sketch.ellipse(
                    PX + math.cos(a) * (HEAD_RX + 6),
                    HEAD_CY - 22 + math.sin(a) * (HEAD_RY + 4),
                    r,
                    r,
                ),
            )
        cap = np.maximum(cap, sketch.ellipse(PX, HEAD_CY - 40, HEAD_RX + 8, HEAD_RY - 20))
        window = sketch.polygon(hair_window(HEAD_CY - 46, 0))
    else:
        outer = {
            "long": (HEAD_RX + 10, HEAD_RY + 8),
            "bob": (HEAD_RX + 14, HEAD_RY + 8),
            "short": (HEAD_RX + 6, HEAD_RY + 2),
            "bun": (HEAD_RX + 6, HEAD_RY + 4),
        }[style]
        cap = sketch.ellipse(PX, HEAD_CY - 4, *outer)
        if style == "short":
            window = sketch.polygon(hair_window(HEAD_CY - 50, 22))
            cap *= sketch.polygon(
                [(0, 0), (width := PERSON_SIZE[0], 0), (width, HEAD_CY + 4), (0, HEAD_CY + 4)]
            )
        else:
            window = sketch.polygon(hair_window(HEAD_CY - 42, -18))
            length = HEAD_CY + (140 if style == "long" else 70)
            right = [
                (PX + outer[0], HEAD_CY),
                (PX + outer[0] + 6, length - 40),
                *bezier(
                    (PX + outer[0] + 6, length - 40),
                    (PX + outer[0] + 4, length),
                    (PX + outer[0] - 10, length + 6),
                    steps=8,
                ),
                (PX + HEAD_RX - 26, length - 4),
                (PX + HEAD_RX - 20, HEAD_CY),
            ]
            sides = np.maximum(sketch.polygon(right), sketch.polygon(mirror(right, PX)))
            cap = np.maximum(cap, sides)
            if style == "bob":
                cap *= sketch.polygon([(0, 0), (800, 0), (800, length), (0, length)])
        if style == "bun":
            cap = np.maximum(cap, sketch.ellipse(PX, top - 18, 34, 30))
    cap = np.clip(cap - window, 0, 1)
    sketch.fill(cap, figure.hair)
    sketch.shade(cap, depth=0.32, radius=12)
    shine = bezier((PX - 44, top + 16), (PX - 10, top - 4), (PX + 30, top + 6), steps=16)
    sketch.glow(sketch.lines(shine, 9), (255, 255, 255), 0.12, 7, clip=cap)


def draw_face(sketch: Sketch, figure: Figure) -> None:
    eye_y = HEAD_CY + 8
    skin_dark = mix(figure.skin, (70, 34, 24), 0.45)
    brow = mix(figure.hair, figure.skin, 0.12)
    for side in (-1, 1):
        ex = PX + side * 27
        white = sketch.polygon(
            path(
                bezier(
                    (ex - 11, eye_y),
                    (ex - 4, eye_y - 8),
                    (ex + 4, eye_y - 8),
                    (ex + 11, eye_y),
                    steps=12,
                ),
                bezier(
                    (ex + 11, eye_y),
                    (ex + 4, eye_y + 6),
                    (ex - 4, eye_y + 6),
                    (ex - 11, eye_y),
                    steps=12,
                ),
            )
        )
        sketch.fill(white, (248, 244, 238))
        sketch.fill(sketch.ellipse(ex, eye_y - 0.5, 5.8, 5.8) * white, figure.eyes)
        sketch.fill(sketch.ellipse(ex + 1.8, eye_y - 2.2, 1.6, 1.6), (255, 255, 255))
        lid = bezier(
            (ex - 12, eye_y + 0.5),
            (ex - 4, eye_y - 9),
            (ex + 4, eye_y - 9),
            (ex + 12, eye_y + 0.5),
            steps=12,
        )
        sketch.fill(sketch.lines(lid, 2.4), mix(figure.hair, (0, 0, 0), 0.4))
        brow_line = bezier(
            (ex - side * 13, eye_y - 14),
            (ex - side * 2, eye_y - 21),
            (ex + side * 13, eye_y - 17),
            steps=12,
        )
        sketch.fill(sketch.lines(brow_line, 4.2), brow, 0.9)
        sketch.glow(sketch.ellipse(PX + side * 40, HEAD_CY + 40, 15, 10), (226, 104, 104), 0.12, 7)
    nose = bezier((PX - 3, eye_y + 26), (PX + 1, eye_y + 33), (PX + 7, eye_y + 29), steps=10)
    sketch.glow(sketch.lines(nose, 3), skin_dark, 0.55, 1.2)
    sketch.glow(sketch.lines([(PX + 2, eye_y + 4), (PX + 4, eye_y + 24)], 5), skin_dark, 0.10, 3)
    mouth_y = HEAD_CY + 52
    upper = bezier(
        (PX - 17, mouth_y),
        (PX - 6, mouth_y - 5),
        (PX + 6, mouth_y - 5),
        (PX + 17, mouth_y),
        steps=16,
    )
    lower = bezier(
        (PX + 17, mouth_y),
        (PX + 6, mouth_y + 11),
        (PX - 6, mouth_y + 11),
        (PX - 17, mouth_y),
        steps=16,
    )
    sketch.fill(sketch.polygon(path(upper, lower)), figure.lips)
    smile = bezier((PX - 16, mouth_y), (PX, mouth_y + 4), (PX + 16, mouth_y), steps=16)
    sketch.fill(sketch.lines(smile, 1.8), mix(figure.lips, (0, 0, 0), 0.4))
    sketch.glow(sketch.ellipse(PX + 2, mouth_y + 8, 8, 3), (255, 255, 255), 0.18, 2)


# --------------------------------------------------------------------------- photographs


@dataclass(frozen=True)
class Photo:
    name: str
    package: str
    relative: str
    crop: tuple[int, int, int, int]  # left, top, right, bottom in the source


PHOTOS = [
    Photo("astronaut", "skimage", "data/astronaut.png", (33, 0, 417, 512)),
    Photo("grace-hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", (31, 0, 481, 600)),
]


def find_in_package(package: str, relative: str) -> Path | None:
    """Locate a data file inside an installed package without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


def crop_photo(source: Path, photo: Photo) -> Image.Image:
    with Image.open(source) as image:
        return image.convert("RGB").crop(photo.crop)


# --------------------------------------------------------------------------- output


def save_jpeg(image: Image.Image, target: Path) -> None:
    image.save(target, "JPEG", quality=JPEG_QUALITY, optimize=True)


def save_png(image: Image.Image, target: Path) -> None:
    image.save(target, "PNG", optimize=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--astronaut", type=Path, help="path to skimage's data/astronaut.png")
    parser.add_argument(
        "--grace-hopper", type=Path, help="path to matplotlib's sample_data/grace_hopper.jpg"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the samples directory")
    parser.add_argument("--only", nargs="*", help="regenerate just these names")
    args = parser.parse_args(argv)

    persons_dir, garments_dir = args.out / "persons", args.out / "garments"
    persons_dir.mkdir(parents=True, exist_ok=True)
    garments_dir.mkdir(parents=True, exist_ok=True)

    def wanted(name: str) -> bool:
        return not args.only or name in args.only

    given = {"astronaut": args.astronaut, "grace-hopper": args.grace_hopper}
    for photo in PHOTOS:
        if not wanted(photo.name):
            continue
        source = given[photo.name] or find_in_package(photo.package, photo.relative)
        target = persons_dir / f"{photo.name}.jpg"
        if source is None or not source.is_file():
            print(
                f"{photo.name}: source not found (pass --{photo.name}); kept {target.name}",
                file=sys.stderr,
            )
            continue
        save_jpeg(crop_photo(source, photo), target)
        print(f"wrote {target.relative_to(args.out)}")
    for name, figure in FIGURES.items():
        if wanted(name):
            target = persons_dir / f"{name}.jpg"
            save_jpeg(person_sketch(figure).image(), target)
            print(f"wrote {target.relative_to(args.out)}")
    for name, draw in GARMENTS.items():
        if wanted(name):
            target = garments_dir / f"{name}.png"
            save_png(draw(), target)
            print(f"wrote {target.relative_to(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
