"""The checks' vocabulary: each flag's code, its label for people, its chip text, its threshold,
and how the suspect score is made from the values.

The codes are fixed (pages, exports and the CLI show them); raise CHECKS_VERSION whenever a
check or a threshold changes, so that results scored before can be found and scored again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

CHECKS_VERSION = 1


@dataclass(frozen=True)
class Check:
    """One check: past `limit` (above it, or below it when `low_is_bad`) its flag is raised.
    `spread` is how far from the limit the value's suspicion goes from ½ to about ¾."""

    code: str
    label: str
    means: str
    limit: float
    spread: float
    low_is_bad: bool
    chip: Callable[[float], str]

    def flagged(self, value: float) -> bool:
        return value < self.limit if self.low_is_bad else value > self.limit

    def suspicion(self, value: float) -> float:
        """0…1: ½ at the limit, towards 1 the further past it."""
        distance = (self.limit - value) if self.low_is_bad else (value - self.limit)
        return 1.0 / (1.0 + math.exp(-distance / self.spread))


def _percent(value: float) -> str:
    return f"{value * 100:.0f} %" if value >= 0.01 else f"{value * 100:.1f} %"


CHECKS: dict[str, Check] = {
    check.code: check
    for check in (
        Check(
            "unchanged",
            "Unchanged",
            "the garment was not applied: the result is (nearly) the person photo",
            limit=0.03,
            spread=0.01,
            low_is_bad=True,
            chip=lambda v: f"Unchanged: {_percent(v)} differs",
        ),
        Check(
            "face_changed",
            "Face changed",
            "the face differs from the person photo's face",
            limit=0.25,
            spread=0.06,
            low_is_bad=False,
            chip=lambda v: f"Face changed: {_percent(v)} different",
        ),
        Check(
            "background_changed",
            "Background changed",
            "outside the person, the picture changed",
            limit=0.25,
            spread=0.08,
            low_is_bad=False,
            chip=lambda v: f"Background changed: {_percent(v)} of it",
        ),
        Check(
            "colour_off",
            "Colour off",
            "the garment's colour in the result is far from the garment photo's (ΔE2000)",
            limit=11.0,
            spread=4.0,
            low_is_bad=False,
            chip=lambda v: f"Colour off: ΔE {v:.0f}",
        ),
        Check(
            "pattern_lost",
            "Pattern lost",
            "the garment's print, stripes or logo did not carry over",
            limit=0.5,
            spread=0.1,
            low_is_bad=True,
            chip=lambda v: f"Pattern lost: {_percent(v)} of its detail",
        ),
        Check(
            "low_quality",
            "Low quality",
            "the result is blurred, blocky or noisy compared with the person photo",
            limit=0.4,
            spread=0.1,
            low_is_bad=False,
            chip=lambda v: f"Low quality: {_percent(v)} degraded",
        ),
        Check(
            "framing_changed",
            "Framing changed",
            "the result's aspect ratio or framing differs from the person photo",
            limit=0.05,
            spread=0.03,
            low_is_bad=False,
            chip=lambda v: f"Framing changed: {_percent(v)} off",
        ),
    )
}

FLAG_CODES: tuple[str, ...] = tuple(CHECKS)


def label(code: str) -> str:
    """A flag's label for people ("Colour off"); an unknown code is shown as it is."""
    check = CHECKS.get(code)
    return check.label if check else code


def chip(code: str, value: float | None) -> str:
    """The chip that says why ("Colour off: ΔE 23"); the label alone without a value."""
    check = CHECKS.get(code)
    if check is None:
        return code
    return check.label if value is None else check.chip(value)


def suspect_score(values: dict[str, float | None]) -> float:
    """0 (looks right) … 1 (surely wrong): the most suspicious check's suspicion, nudged up by
    the others (two problems are worse than one). Past ½ exactly when a flag is raised."""
    suspicions = sorted(
        (
            CHECKS[code].suspicion(value)
            for code, value in values.items()
            if code in CHECKS and value is not None
        ),
        reverse=True,
    )
    if not suspicions:
        return 0.0
    top = suspicions[0]
    if top < 0.5:
        return round(top, 4)
    rest = sum(suspicions[1:3]) / 2
    return round(top + (1.0 - top) * 0.5 * rest, 4)
