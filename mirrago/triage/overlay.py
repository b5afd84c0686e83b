"""Where a result changed, drawn over it: for `face_changed` within the face, for
`background_changed` in the background. The detail dialog's "Show where it changed" toggle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mirrago.errors import UncheckableInput
from mirrago.triage import measure
from mirrago.triage.check import _open, _person

OVERLAY_CODES = ("face_changed", "background_changed")
_TINT = np.array([235, 40, 90], dtype=np.float32)  # a magenta no photo's backdrop is likely to be


def change_overlay(person: str | Path, result: str | Path, code: str) -> Image.Image | None:
    """The result (on the person photo's grid, at most `measure.DETAIL_SIDE` px) with the
    changed pixels of the face or the background tinted and the rest dimmed; None when the
    files cannot be read or the check has no such region (no face found)."""
    if code not in OVERLAY_CODES:
        raise ValueError(f"no overlay for {code!r}: only {', '.join(OVERLAY_CODES)}")
    try:
        person_image = _open(person, "person photo", measure.DETAIL_SIDE)
        result_image = _open(result, "result", measure.DETAIL_SIDE)
    except UncheckableInput:
        return None
    work = measure.small(person_image, measure.WORK_SIDE)
    found_person = _person(person_image, work)
    shown = result_image.resize(work.size, Image.Resampling.BILINEAR)
    found = measure.changes(found_person, measure.lab(shown))
    if code == "face_changed":
        region = measure.face_region(found_person)
        changed = found.changed
    else:
        region = measure.background_region(found_person, found)
        changed = measure.background_changed(found)
    if region is None:
        return None
    picture = np.asarray(shown, dtype=np.float32)
    marked = (changed & region)[..., None]
    dimmed = np.where(region[..., None], picture, picture * 0.45 + 140 * 0.55)
    tinted = np.where(marked, dimmed * 0.35 + _TINT * 0.65, dimmed)
    image = Image.fromarray(np.clip(tinted, 0, 255).astype(np.uint8))
    return image.resize(measure.small(result_image, measure.DETAIL_SIDE).size)
