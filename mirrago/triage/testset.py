"""The checks' test set: real sandbox renders of the shipped samples, and each defect made from
them, for the accuracy benchmark and the tests.

A good render is what the sandbox returns (`mirrago.sandbox.render.render`, saved as PNG like
the sandbox's results). Each defect is made from one good render with the parts the renderer
knows (where the garment lies, where the person and the face are), so the defect sits where a
real model's would: the person photo back unchanged, the face blurred or replaced, the
background replaced, the garment recoloured or its print flattened, the whole picture blurred
or JPEG-blocked, a crop.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps
from skimage import color

from mirrago.samples import Sample, garments, persons
from mirrago.sandbox.render import MAX_SIDE, Rendering, render
from mirrago.sandbox.render.placement import _fit

# Each defect kind and the flag it must get.
DEFECT_FLAGS: dict[str, str] = {
    "no_change": "unchanged",
    "face_blurred": "face_changed",
    "face_replaced": "face_changed",
    "background_replaced": "background_changed",
    "recoloured": "colour_off",
    "print_flattened": "pattern_lost",
    "blurred": "low_quality",
    "jpeg_blocking": "low_quality",
    "cropped": "framing_changed",
}

# The garments with a print, stripes or a logo: a plain garment has no print to lose.
PRINTED_GARMENTS = frozenset({"striped-tee", "floral-dress", "black-logo-tee", "green-sweater"})


@dataclass(frozen=True)
class Case:
    """One result to check: its files, and what it is (`good` or a defect kind)."""

    kind: str
    person: Path
    garment: Path
    result: Path
    pair: str  # person+garment, to name a case in a report


@dataclass(frozen=True)
class GoodRender:
    """A good render with the parts of it the defects are made from."""

    person: Sample
    garment: Sample
    canvas: Image.Image  # the person photo as the renderer saw it
    rendering: Rendering

    @property
    def pair(self) -> str:
        return f"{self.person.name}+{self.garment.name}"


def good_renders(pairs: Iterable[tuple[Sample, Sample]] | None = None) -> list[GoodRender]:
    """The sandbox's renders of `pairs` (default: every sample person × every sample garment)
    whose body the renderer found (a fallback placement is no fitted render to damage)."""
    chosen = pairs if pairs is not None else [(p, g) for p in persons() for g in garments()]
    renders = []
    for person, garment in chosen:
        photo = Image.open(person.path)
        canvas = _fit(ImageOps.exif_transpose(photo).convert("RGB"), MAX_SIDE)
        rendering = render(photo, Image.open(garment.path))
        if rendering.body is not None and rendering.coverage is not None:
            renders.append(GoodRender(person, garment, canvas, rendering))
    return renders


def write_cases(renders: list[GoodRender], folder: Path, seed: int = 7) -> list[Case]:
    """Save each good render and every defect that applies to it under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    faces = [
        r.canvas.crop(r.rendering.body.face_box()) for r in renders[:: max(1, len(renders) // 6)]
    ]
    cases = []
    for index, good in enumerate(renders):
        made = {"good": _png(good.rendering.image)}
        for kind in DEFECT_FLAGS:
            if kind == "print_flattened" and good.garment.name not in PRINTED_GARMENTS:
                continue
            made[kind] = make_defect(kind, good, rng, faces)
        for kind, data in made.items():
            suffix = "jpg" if data[:2] == b"\xff\xd8" else "png"
            path = folder / f"{index:03d}-{good.pair}-{kind}.{suffix}"
            path.write_bytes(data)
            cases.append(Case(kind, good.person.path, good.garment.path, path, good.pair))
    return cases


def make_defect(kind: str, good: GoodRender, rng: random.Random, faces: list[Image.Image]) -> bytes:
    """The encoded result of defect `kind` made from `good`."""
    image = good.rendering.image.convert("RGB")
    body = good.rendering.body
    coverage = good.rendering.coverage
    assert body is not None and coverage is not None
    if kind == "no_change":
        return _png(good.canvas)
    if kind == "face_blurred":
        box = body.face_box()
        radius = max(3.0, (box[2] - box[0]) / rng.uniform(5, 9))
        return _png(_paste_face(image, image.filter(ImageFilter.GaussianBlur(radius)), body))
    if kind == "face_replaced":
        box = body.face_box()
        own = image.crop(box)
        other = next((f for f in rng.sample(faces, len(faces)) if f.size != own.size), faces[0])
        stranger = image.copy()
        stranger.paste(ImageOps.mirror(other).resize(own.size), box[:2])
        return _png(_paste_face(image, stranger, body))
    if kind == "background_replaced":
        return _png(_new_background(image, good, rng))
    if kind == "recoloured":
        return _png(_recolour(image, coverage, rng))
    if kind == "print_flattened":
        radius = max(4.0, image.width / rng.uniform(25, 40))
        flat = image.filter(ImageFilter.GaussianBlur(radius))
        return _png(_through(image, flat, coverage))
    if kind == "blurred":
        radius = max(image.size) / 1024 * rng.uniform(3.0, 5.0)
        return _png(image.filter(ImageFilter.GaussianBlur(radius)))
    if kind == "jpeg_blocking":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=rng.randint(3, 7))
        return buffer.getvalue()
    if kind == "cropped":
        return _png(_crop(image, rng))
    raise ValueError(f"unknown defect kind {kind!r}")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _through(base: Image.Image, top: Image.Image, alpha: np.ndarray) -> Image.Image:
    """`top` over `base` where `alpha` (0…1 per pixel) says."""
    mask = Image.fromarray((np.clip(alpha, 0, 1) * 255).astype(np.uint8), "L")
    return Image.composite(top, base, mask)


def _paste_face(image: Image.Image, changed: Image.Image, body) -> Image.Image:
    face = body.face_mask(image.size).astype(np.float32)
    soft = Image.fromarray((face * 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(3))
    return Image.composite(changed, image, soft)


def _new_background(image: Image.Image, good: GoodRender, rng: random.Random) -> Image.Image:
    body = good.rendering.body
    keep = np.maximum(np.clip((body.mask - 0.3) / 0.3, 0, 1), good.rendering.coverage)
    keep = np.maximum(keep, body.face_mask(image.size))
    width, height = image.size
    choice = rng.choice(("colour", "gradient", "scene"))
    if choice == "colour":
        fill = Image.new("RGB", image.size, tuple(rng.randint(0, 255) for _ in range(3)))
    elif choice == "gradient":
        top = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
        bottom = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
        ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        rows = top * (1 - ramp) + bottom * ramp
        fill = Image.fromarray(np.broadcast_to(rows, (height, width, 3)).astype(np.uint8))
    else:  # another photo as the scene: a different sample person's picture, blurred
        other = rng.choice([p for p in persons() if p.name != good.person.name])
        scene = ImageOps.fit(Image.open(other.path).convert("RGB"), image.size)
        fill = scene.filter(ImageFilter.GaussianBlur(6))
    soft = Image.fromarray((np.clip(keep, 0, 1) * 255).astype(np.uint8), "L")
    return Image.composite(image, fill, soft.filter(ImageFilter.GaussianBlur(1.5)))


def _recolour(image: Image.Image, coverage: np.ndarray, rng: random.Random) -> Image.Image:
    """The garment's colour changed: its hue turned, or (a colourful garment) greyed out, or
    (a black, white or grey garment) tinted."""
    lab = color.rgb2lab(np.asarray(image, dtype=np.float32) / 255.0)
    inside = coverage > 0.5
    chroma = float(np.hypot(lab[..., 1][inside], lab[..., 2][inside]).mean())
    a, b = lab[..., 1].copy(), lab[..., 2].copy()
    if chroma > 15 and rng.random() < 0.3:  # "green turned grey"
        a, b = a * 0.1, b * 0.1
    elif chroma > 15:
        angle = np.deg2rad(rng.uniform(100, 260))
        a, b = a * np.cos(angle) - b * np.sin(angle), a * np.sin(angle) + b * np.cos(angle)
    else:
        angle = rng.uniform(0, 2 * np.pi)
        a, b = a + 45 * np.cos(angle), b + 45 * np.sin(angle)
        lab[..., 0] = np.clip(lab[..., 0] * 0.6 + 25, 0, 100)  # a tint shows on black too
    lab[..., 1], lab[..., 2] = a, b
    recoloured = np.clip(color.lab2rgb(lab) * 255, 0, 255).astype(np.uint8)
    return _through(image, Image.fromarray(recoloured), coverage)


def _crop(image: Image.Image, rng: random.Random) -> Image.Image:
    width, height = image.size
    sides = rng.sample(("left", "top", "right", "bottom"), rng.randint(1, 2))
    left, top, right, bottom = 0, 0, width, height
    for side in sides:
        share = rng.uniform(0.1, 0.25)
        if side == "left":
            left = round(width * share)
        elif side == "right":
            right = width - round(width * share)
        elif side == "top":
            top = round(height * share)
        else:
            bottom = height - round(height * share)
    return image.crop((left, top, right, bottom))
