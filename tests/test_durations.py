"""The one way durations are written for people."""

from __future__ import annotations

import pytest

from mirrago.durations import duration_text


@pytest.mark.parametrize(
    ("seconds", "rounded", "precise"),
    [
        (-1, "0 s", "0.0 s"),
        (4.24, "4 s", "4.2 s"),
        (45, "45 s", "45 s"),
        (65, "1 min", "1 min 05 s"),
        (180, "3 min", "3 min 00 s"),
        (4800, "1 h 20 min", "80 min 00 s"),
    ],
)
def test_durations_read_the_same_everywhere(seconds: float, rounded: str, precise: str) -> None:
    assert duration_text(seconds) == rounded
    assert duration_text(seconds, precise=True) == precise
