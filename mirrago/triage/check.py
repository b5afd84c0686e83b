"""One result checked against its own inputs: `check_result(person, garment, result)`.

Returns a `Triage`: the suspect score, the flags raised and every check's value, or "not
checked" with the reason (a missing file, an image that does not decode). It never raises for
a bad input; a bug in a check is the caller's to log (the background checker records it as
"not checked").
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mirrago.errors import UncheckableInput
from mirrago.images import MAX_PIXELS
from mirrago.triage import measure
from mirrago.triage.flags import CHECKS, suspect_score
from mirrago.triage.result import Triage

log = logging.getLogger("mirrago.triage")

ImageSource = str | Path | Image.Image


def check_result(
    person: ImageSource,
    garment: ImageSource,
    result: ImageSource,
    *,
    background: str | None = None,
) -> Triage:
    """Check `result` against the `person` and `garment` photos it was made from (paths or
    images). `background`: the backdrop the job asked for (None: the person's own), since a
    replaced backdrop is then no defect."""
    try:
        person_image = _open(person, "person photo", measure.DETAIL_SIDE)
        garment_shape = _garment_shape(garment)
        result_image = _open(result, "result", None)
    except UncheckableInput as reason:
        return Triage.not_checked(str(reason))
    values = measure_all(person_image, garment_shape, result_image, background=background)
    flags = tuple(
        code for code, value in values.items() if value is not None and CHECKS[code].flagged(value)
    )
    return Triage(score=suspect_score(values), flags=flags, values=values)


def measure_all(
    person: Image.Image, garment: Image.Image, result: Image.Image, *, background: str | None
) -> dict[str, float | None]:
    """Every check's value (None where it does not apply), in the vocabulary's order.
    `garment` is the garment's cut-out (`measure.garment_shape`)."""
    values: dict[str, float | None] = dict.fromkeys(CHECKS)
    # One reduced copy of the result serves every check but blockiness (its own pixels).
    reduced = measure.small(result, measure.DETAIL_SIDE)
    work = measure.small(person, measure.WORK_SIDE)
    found_person = _person(person, work)
    # Everything compares pixel to pixel: the result on the person photo's grid.
    result_lab = measure.lab(reduced.resize(work.size, Image.Resampling.BILINEAR))
    framing, head_found = measure.framing(found_person, result_lab, result.size)
    found = measure.changes(found_person, result_lab)
    values["unchanged"] = measure.unchanged_share(found_person, found)
    result_grey = measure.grey(
        reduced.convert("L").resize(found_person.grey.shape[::-1], Image.Resampling.BILINEAR)
    )
    region = measure.garment_region(found_person, found)
    detail_ratio = measure.detail_kept(
        found_person.grey, result_grey, _resized_mask(~region, found_person.grey.shape)
    )
    blocks = measure.blockiness(np.asarray(result.convert("L")))
    values["low_quality"] = max(
        1.0 - min(detail_ratio, 1.0), (blocks - 1.0) / 0.6 * 0.5, (detail_ratio - 1.0) / 3.0
    )
    face = measure.face_difference(found_person, result_grey)
    scene = measure.background_change(found_person, found) if background is None else None
    if not head_found and (face or 0.0) > 0.5 and (scene or 0.0) > 0.5:
        # Neither the head nor the backdrop is where it was: the whole picture moved.
        framing = max(framing, 0.1)
    values["framing_changed"] = framing
    if not CHECKS["framing_changed"].flagged(framing):  # else both changed because it moved
        values["face_changed"], values["background_changed"] = face, scene
    if not CHECKS["unchanged"].flagged(values["unchanged"]):
        _garment_values(values, garment, result_lab, region)
    return values


def _garment_values(
    values: dict[str, float | None],
    garment: Image.Image,
    result_lab: np.ndarray,
    region: np.ndarray,
) -> None:
    area = int(region.sum())
    if area < 0.01 * region.size:
        return
    cutout = measure.garment_cutout(garment, area)
    if cutout is None:
        return
    garment_lab, garment_mask = cutout
    values["colour_off"] = measure.colour_distance(garment_lab, garment_mask, result_lab, region)
    printed = measure.detail(garment_lab[..., 0], garment_mask)
    if printed >= PRINT_DETAIL:
        values["pattern_lost"] = measure.detail(result_lab[..., 0], region) / printed


# A garment photo whose lightness changes less than this per pixel (at the size it is worn)
# has no print to lose.
PRINT_DETAIL = 1.5


def _garment_shape(garment: ImageSource) -> Image.Image:
    if isinstance(garment, Image.Image):
        return measure.garment_shape(_open(garment, "garment photo", None, keep_alpha=True))
    path = Path(garment)
    try:
        stat = path.stat()
    except OSError:
        raise UncheckableInput("the garment photo file is missing") from None
    return _garment_file_shape(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _garment_file_shape(path: str, mtime_ns: int, size: int) -> Image.Image:
    """A garment file's cut-out, remembered: a batch puts one garment on many persons."""
    return measure.garment_shape(_open(path, "garment photo", 256, keep_alpha=True))


def _person(person: Image.Image, work: Image.Image) -> measure.Person:
    mask = face = None
    try:
        from mirrago.sandbox.render.body import NoPerson, find_body

        try:
            body = find_body(work)
            mask, face = body.mask, body.face_box()
        except NoPerson as reason:
            log.info("triage: no person found in the person photo (%s)", reason)
    except ImportError:  # the renderer's models cannot run here: check without a person
        pass
    detail = measure.small(person, measure.DETAIL_SIDE)
    if detail.size != work.size:
        detail = person.resize(_detail_size(work.size), Image.Resampling.BILINEAR)
    return measure.Person(lab=measure.lab(work), grey=measure.grey(detail), mask=mask, face=face)


def _detail_size(size: tuple[int, int]) -> tuple[int, int]:
    scale = measure.DETAIL_SIDE / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _resized_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    picture = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(picture.resize(shape[::-1], Image.Resampling.NEAREST)) > 127


def _open(
    source: ImageSource, what: str, side: int | None, *, keep_alpha: bool = False
) -> Image.Image:
    """The image RGB (transparency on white), or RGBA with `keep_alpha` (a garment's cut-out)."""
    if isinstance(source, Image.Image):
        image = source
    else:
        image = _decode(Path(source), what, side)
    if keep_alpha and image.mode in ("RGBA", "LA", "PA"):
        return image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return flat
    return image.convert("RGB")


def _decode(path: Path, what: str, side: int | None) -> Image.Image:
    try:
        with Image.open(path) as opened:
            if opened.size[0] * opened.size[1] > MAX_PIXELS:  # read from the header: not decoded
                raise UncheckableInput(
                    f"the {what} is over {MAX_PIXELS // 1_000_000} megapixels: too large to check"
                )
            if side is not None:
                opened.draft("RGB", (side, side))  # JPEG: decode at a fraction of the size
            image = ImageOps.exif_transpose(opened)
            image.load()
    except FileNotFoundError:
        raise UncheckableInput(f"the {what} file is missing") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise UncheckableInput(
            f"the {what} does not decode as an image ({type(error).__name__})"
        ) from None
    return image
