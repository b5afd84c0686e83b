"""The sandbox renderer on every shipped person × garment: the garment is fitted to the body.

Every pair is rendered once per module (original background) and the checks read those
renders; the background options run on one garment per person. No timing is asserted here:
speed is `benchmarks/render_speed.py`'s job.
"""

from __future__ import annotations

import functools
import io
import logging
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image, ImageDraw

from mirrago.sandbox import render
from mirrago.sandbox.render import body as bodies
from mirrago.sandbox.render.memo import PictureMemo
from mirrago.sandbox.render.placement import _fit

SAMPLES = Path(__file__).parents[1] / "mirrago" / "samples"
PERSONS = sorted(p for p in (SAMPLES / "persons").iterdir() if p.suffix in {".jpg", ".png"})
GARMENTS = sorted(p for p in (SAMPLES / "garments").iterdir() if p.suffix in {".jpg", ".png"})
# Garments with shoulders and sleeves (the dress hangs on straps).
WITH_SHOULDERS = {"black-logo-tee", "denim-shirt", "green-sweater", "red-hoodie", "striped-tee"}
PAIRS = [(p, g) for p in PERSONS for g in GARMENTS]


def pair_id(pair: tuple[Path, Path]) -> str:
    return f"{pair[0].stem}+{pair[1].stem}"


def load(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image


@functools.cache
def canvas_of(path: Path) -> Image.Image:
    """The person as the renderer sees it: upright RGB after the sandbox's size cap."""
    return _fit(load(path).convert("RGB"), render.MAX_SIDE)


@pytest.fixture(scope="module")
def renders() -> dict[tuple[str, str], render.Rendering]:
    return {(p.stem, g.stem): render.render(load(p), load(g)) for p, g in PAIRS}


def torso_quad(body: render.Body) -> np.ndarray:
    """The torso between the shoulder joints and the hip joints, narrowed to its middle 70%
    (the arms hang along its sides)."""
    points = body.points
    shoulders = points[[bodies.RIGHT_SHOULDER, bodies.LEFT_SHOULDER]]
    hips = points[[bodies.RIGHT_HIP, bodies.LEFT_HIP]]
    shoulder_mid, hip_mid = shoulders.mean(axis=0), hips.mean(axis=0)
    top = shoulder_mid + (shoulders - shoulder_mid) * 0.7
    bottom = hip_mid + (hips - hip_mid) * 0.7
    return np.array([top[0], top[1], bottom[1], bottom[0]])


def polygon_mask(size: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in polygon], fill=255)
    return np.asarray(mask) > 0


@functools.cache
def garment_pixels(path: Path) -> np.ndarray:
    rgba = np.asarray(render.cut_out(load(path)), dtype=np.int16)
    return rgba[rgba[..., 3] > 200][:, :3]


def garment_colour(path: Path) -> np.ndarray:
    """The garment's main colour: the per-channel median of its opaque pixels."""
    return np.median(garment_pixels(path), axis=0).astype(np.float32)


@functools.cache
def garment_palette(path: Path) -> np.ndarray:
    """The garment's eight main colours."""
    cut = render.cut_out(load(path)).convert("RGB")
    palette = cut.quantize(8).getpalette()[:24]
    return np.array(palette, dtype=np.int16).reshape(8, 3)


# ---- every pair ----------------------------------------------------------------------------------


@pytest.mark.parametrize("person", PERSONS, ids=lambda p: p.stem)
def test_a_person_is_found_in_every_shipped_photo(renders, person: Path) -> None:
    for garment in GARMENTS:
        rendering = renders[person.stem, garment.stem]
        assert rendering.fallback is None and rendering.body is not None


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_output_size_equals_the_capped_input(renders, pair) -> None:
    person, garment = pair
    assert renders[person.stem, garment.stem].image.size == canvas_of(person).size


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_face_region_is_unchanged(renders, pair) -> None:
    person, garment = pair
    rendering = renders[person.stem, garment.stem]
    canvas = canvas_of(person)
    left, top, right, bottom = rendering.body.face_box()
    width, height = canvas.size
    # The face box is a face-sized box in the upper part of the picture…
    assert 0.05 * width < right - left < 0.5 * width
    assert (top + bottom) / 2 < 0.45 * height
    # …and not one pixel of the face (the ellipse in that box) changed.
    face = rendering.body.face_mask(canvas.size)
    assert face.sum() > 0.5 * (right - left) * (bottom - top)
    before = np.asarray(canvas, dtype=np.int16)[face]
    after = np.asarray(rendering.image, dtype=np.int16)[face]
    assert np.abs(after - before).max() == 0


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_garment_covers_the_torso_between_shoulders_and_hips(renders, pair) -> None:
    person, garment = pair
    rendering = renders[person.stem, garment.stem]
    quad = torso_quad(rendering.body)
    if garment.stem not in WITH_SHOULDERS:  # a dress on straps: from the bust down
        quad[:2] = quad[:2] + (quad[3::-1][:2] - quad[:2]) * 0.3
    inside = polygon_mask(rendering.image.size, quad)
    assert inside.sum() > 500
    coverage = rendering.coverage[inside]
    # The person's own forearms and hands may cross the torso in front of the garment.
    assert (coverage > 0.5).mean() > 0.85, f"torso covered {(coverage > 0.5).mean():.0%}"


@pytest.mark.parametrize(
    "pair", [pair for pair in PAIRS if pair[1].stem in WITH_SHOULDERS], ids=pair_id
)
def test_garment_covers_the_persons_shoulder_line(renders, pair) -> None:
    """The person's own shirt must not show at the shoulders: on the line through both
    shoulder joints, from one to the other and a little beyond, the output differs from the
    photo wherever the garment's colour differs from the photo's there, and the garment is
    opaque along all of it."""
    person, garment = pair
    rendering = renders[person.stem, garment.stem]
    points = rendering.body.points
    left, right = points[bodies.RIGHT_SHOULDER], points[bodies.LEFT_SHOULDER]
    samples = [left + (right - left) * t for t in np.linspace(-0.05, 1.05, 60)]
    width, height = rendering.image.size
    samples = [p for p in samples if 0 <= p[0] < width and 0 <= p[1] < height]
    assert len(samples) > 30
    xs, ys = (np.array([int(p[i]) for p in samples]) for i in (0, 1))
    assert (rendering.coverage[ys, xs] > 0.5).mean() > 0.95

    before = np.asarray(canvas_of(person), dtype=np.int16)[ys, xs]
    after = np.asarray(rendering.image, dtype=np.int16)[ys, xs]
    # Where the photo already shows one of the garment's colours (white stripes over a white
    # shirt), a change cannot be seen; everywhere else the photo's own clothes must be gone.
    palette = garment_palette(garment)
    distinct = np.abs(before[:, None, :] - palette[None]).max(axis=2).min(axis=1) > 40
    changed = np.abs(after - before).max(axis=1) > 25
    assert distinct.sum() == 0 or changed[distinct].mean() > 0.9, (
        f"only {changed[distinct].mean():.0%} of the shoulder line changed"
    )


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_torso_colour_is_the_garments(renders, pair) -> None:
    person, garment = pair
    rendering = renders[person.stem, garment.stem]
    quad = torso_quad(rendering.body)
    quad[:2] = quad[:2] + (quad[3::-1][:2] - quad[:2]) * 0.3  # the chest and belly
    inside = polygon_mask(rendering.image.size, quad)
    result = np.asarray(rendering.image, dtype=np.float32)[inside]
    before = np.asarray(canvas_of(person), dtype=np.float32)[inside]
    pixels = garment_pixels(garment)
    # A print or a stripe moves one statistic or the other: the median keeps a red hoodie
    # red under its white logo, the mean keeps a striped tee half navy.
    readings = []
    for statistic in (np.mean, np.median):
        wanted = statistic(pixels, axis=0)
        got = np.linalg.norm(statistic(result, axis=0) - wanted)
        was = np.linalg.norm(statistic(before, axis=0) - wanted)
        readings.append((round(float(got)), round(float(was))))
        if got < 60 and got < was:
            return
    raise AssertionError(f"torso colour far from the garment's (now, before): {readings}")


# ---- backgrounds ----------------------------------------------------------------------------


@pytest.mark.parametrize("background", ["white", "studio"])
@pytest.mark.parametrize("person", [PERSONS[1], PERSONS[2]], ids=lambda p: p.stem)
def test_background_options_replace_the_backdrop_and_keep_the_face(
    person: Path, background: str
) -> None:
    rendering = render.render(load(person), load(GARMENTS[0]), background)
    canvas = canvas_of(person)
    pixels = np.asarray(rendering.image, dtype=np.int16)
    assert rendering.image.size == canvas.size
    # The top corners are backdrop in every sample: now the new one.
    height, width, _ = pixels.shape
    corners = np.concatenate(
        [
            pixels[: height // 20, : width // 20].reshape(-1, 3),
            pixels[: height // 20, -(width // 20) :].reshape(-1, 3),
        ]
    )
    if background == "white":
        assert (corners >= 245).all(axis=1).mean() > 0.95
    else:  # a grey studio sweep: neutral, light at the top
        spread = np.abs(corners - corners.mean(axis=1, keepdims=True)).max(axis=1)
        assert (spread <= 3).mean() > 0.95
        assert 200 < corners.mean() < 245
    face = rendering.body.face_mask(canvas.size)
    face_before = np.asarray(canvas, dtype=np.int16)[face]
    assert np.abs(np.asarray(rendering.image, dtype=np.int16)[face] - face_before).max() == 0


def test_original_background_keeps_the_backdrop(renders) -> None:
    for person in PERSONS:
        canvas = np.asarray(canvas_of(person), dtype=np.int16)
        image = np.asarray(renders[person.stem, GARMENTS[0].stem].image, dtype=np.int16)
        height, width, _ = canvas.shape
        corner = (slice(0, height // 20), slice(0, width // 20))
        assert np.abs(image[corner] - canvas[corner]).max() == 0


# ---- cut-outs ------------------------------------------------------------------------------------


def drawn_tee(backdrop: tuple[int, ...], mode: str) -> tuple[Image.Image, np.ndarray]:
    """A red tee with white stripes running out to its edges, on `backdrop`; and its shape."""
    image = Image.new(mode, (400, 400), backdrop)
    shape = Image.new("L", (400, 400), 0)
    outline = [
        (130, 60),
        (270, 60),
        (360, 120),
        (330, 170),
        (290, 150),
        (290, 350),
        (110, 350),
        (110, 150),
        (70, 170),
        (40, 120),
    ]
    fill = (200, 30, 40) + ((255,) if mode == "RGBA" else ())
    ImageDraw.Draw(image).polygon(outline, fill=fill)
    ImageDraw.Draw(shape).polygon(outline, fill=255)
    stripes = Image.new(mode, (400, 400), (252, 252, 252) + ((255,) if mode == "RGBA" else ()))
    band = Image.new("L", (400, 400), 0)
    for y in range(180, 340, 40):
        ImageDraw.Draw(band).rectangle((0, y, 399, y + 12), fill=255)
    band = Image.fromarray(np.minimum(np.asarray(band), np.asarray(shape)), "L")
    image.paste(stripes, (0, 0), band)
    return image, np.asarray(shape) > 0


def test_garment_with_alpha_keeps_its_own_alpha() -> None:
    image, shape = drawn_tee((0, 0, 0, 0), "RGBA")
    cut = render.cut_out(image)
    ys, xs = np.nonzero(shape)
    assert cut.size == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    cropped = np.asarray(image.getchannel("A"))[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert np.array_equal(np.asarray(cut.getchannel("A")), cropped)


def test_garment_on_white_cuts_out_cleanly_with_its_white_stripes() -> None:
    image, shape = drawn_tee((255, 255, 255), "RGB")
    cut = render.cut_out(image)
    ys, xs = np.nonzero(shape)
    # Cropped to the tee (its feathered edge may add a pixel or two)…
    assert abs(cut.width - (xs.max() - xs.min() + 1)) <= 4
    assert abs(cut.height - (ys.max() - ys.min() + 1)) <= 4
    # …as much garment as was drawn, stripes included, and no backdrop halo: the opaque
    # pixels are the tee's red or its stripes' white, never a blend with the backdrop.
    alpha = np.asarray(cut.getchannel("A"))
    assert abs((alpha > 128).sum() / shape.sum() - 1) < 0.015
    rgb = np.asarray(cut.convert("RGB"), dtype=np.int16)[alpha > 250]
    red = np.abs(rgb - (200, 30, 40)).max(axis=1) < 30
    white = (rgb >= 240).all(axis=1)
    assert (red | white).mean() > 0.99


def test_shipped_striped_tee_keeps_its_white_stripes() -> None:
    """The flood fill reached the white stripes through the tee's edges and cut them out."""
    cut = render.cut_out(load(SAMPLES / "garments" / "striped-tee.png"))
    alpha = np.asarray(cut.getchannel("A"))
    height, width = alpha.shape
    middle = alpha[int(0.4 * height) : int(0.9 * height), int(0.4 * width) : int(0.6 * width)]
    assert (middle > 128).mean() > 0.99


# ---- no person ---------------------------------------------------------------------------------


def landscape() -> Image.Image:
    """A photo with nobody in it: sky, sea and a sun."""
    image = Image.new("RGB", (640, 480), (120, 170, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 300, 640, 480), fill=(30, 90, 140))
    draw.ellipse((480, 60, 560, 140), fill=(250, 220, 90))
    return image


def test_photo_without_a_person_falls_back_and_says_why(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="mirrago.sandbox.render"):
        rendering = render.render(landscape(), load(GARMENTS[0]))
    assert rendering.fallback and rendering.body is None
    assert rendering.image.size == (640, 480)
    assert any("no person found" in record.getMessage() for record in caplog.records)


def test_sandbox_job_with_no_person_completes_and_logs(make_sandbox, caplog) -> None:
    sandbox = make_sandbox(latency=0.0)
    token = requests.post(
        f"{sandbox.base_url}/oauth/token",
        json={
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "grant_type": "client_credentials",
        },
        timeout=10,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    buffer = io.BytesIO()
    landscape().save(buffer, format="JPEG")
    with caplog.at_level(logging.WARNING, logger="mirrago.sandbox.render"):
        response = requests.post(
            f"{sandbox.base_url}/v1/mirrago/generate-image",
            headers=headers,
            files={
                "target_image": ("person.jpg", buffer.getvalue(), "image/jpeg"),
                "garment_image": ("garment.png", GARMENTS[0].read_bytes(), "image/png"),
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
        job_id = response.json()["job_id"]
        job = {}
        for _ in range(400):  # a generous deadline; the render takes well under a second
            job = requests.get(
                f"{sandbox.base_url}/v1/mirrago/job/{job_id}", headers=headers, timeout=10
            ).json()
            if job["status"] in {"completed", "failed"}:
                break
            time.sleep(0.05)
    assert job["status"] == "completed", job
    result = requests.get(job["result_url"], timeout=10)
    with Image.open(io.BytesIO(result.content)) as image:
        assert image.size == (640, 480)
    assert any("no person found" in record.getMessage() for record in caplog.records)


def test_without_the_model_runtime_the_sandbox_falls_back_and_says_why(monkeypatch, caplog) -> None:
    """Where `ai-edge-litert` has no wheel it is not installed: the renderer still answers."""
    monkeypatch.setattr(bodies, "_models", None)
    monkeypatch.setattr(bodies, "_unavailable", "ai-edge-litert is not installed")
    monkeypatch.setattr(bodies, "_found", PictureMemo(8))  # such a process has found nobody
    with caplog.at_level(logging.WARNING, logger="mirrago.sandbox.render"):
        rendering = render.render(load(PERSONS[2]), load(GARMENTS[0]))
    assert rendering.fallback == "ai-edge-litert is not installed"
    assert rendering.image.size == canvas_of(PERSONS[2]).size
    assert any("ai-edge-litert is not installed" in r.getMessage() for r in caplog.records)


def test_the_plain_placement_for_load_tests_skips_the_body_models(monkeypatch) -> None:
    def no_models(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the body models ran")

    monkeypatch.setattr(render, "find_body", no_models)
    person = _fit(load(PERSONS[0]).convert("RGB"), render.MAX_SIDE)
    image = render.compose(person, load(GARMENTS[0]), fitted=False)
    assert image.mode == "RGB" and image.size == person.size
    difference = np.abs(np.asarray(image, float) - np.asarray(person, float))
    assert difference.mean() > 3  # the garment is on it


def test_a_picture_memo_computes_once_per_picture_and_forgets_the_oldest() -> None:
    """The renderer does work that depends on one picture once (a batch repeats garments)."""
    memo: PictureMemo[int] = PictureMemo(2)
    calls: list[tuple[int, int, int]] = []

    def make(picture: Image.Image) -> int:
        calls.append(picture.getpixel((0, 0)))
        return len(calls)

    red, green, blue = (Image.new("RGB", (4, 4), colour) for colour in ("red", "lime", "blue"))
    assert memo.get(red, make) == 1
    assert memo.get(red.copy(), make) == 1  # same pixels, same answer, no new work
    assert memo.get(green, make) == 2
    assert memo.get(blue, make) == 3  # red was the oldest: forgotten
    assert memo.get(red, make) == 4
    assert len(calls) == 4


def test_the_plain_placement_casts_a_shadow_beside_the_garment() -> None:
    """The cheaper shadow (blurred around the piece only) still darkens the person's photo
    just outside the garment's edge, and the far corners stay as they were."""
    person = Image.new("RGB", (400, 600), (200, 200, 200))
    garment = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(garment).rectangle((40, 40, 160, 160), fill=(30, 60, 160))
    result = np.asarray(render.compose(person, garment, fitted=False), dtype=np.int16)
    blue = np.abs(result - (30, 60, 160)).max(axis=2) < 20
    rows, columns = np.nonzero(blue)
    assert rows.size > 0
    right, bottom = columns.max(), rows.max()
    beside = result[(rows.min() + bottom) // 2, right + 4]
    assert (beside < 195).all()  # in the shadow
    assert (result[5, 5] == (200, 200, 200)).all() and (result[-5, -5] == (200, 200, 200)).all()
