"""Durations for people, the one way every page and the CLI write them."""

from __future__ import annotations


def duration_text(seconds: float, *, precise: bool = False) -> str:
    """ "45 s", "3 min", "1 h 20 min"; `precise` for what a person just waited: "4.2 s",
    "1 min 05 s"."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s" if precise and seconds < 10 else f"{seconds:.0f} s"
    if precise:
        minutes, rest = divmod(int(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min"
