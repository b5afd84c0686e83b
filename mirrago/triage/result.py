"""What the checks found on one result (`Triage`): light, so that the runner's process can hold
and record it without loading the image libraries the checks use."""

from __future__ import annotations

from dataclasses import dataclass, field

from mirrago.triage.flags import CHECKS_VERSION, chip


@dataclass(frozen=True)
class Triage:
    """What the checks found on one result. `score` is None and `reason` says why when the
    result could not be checked. `values` holds each check's value (None: did not apply)."""

    score: float | None
    flags: tuple[str, ...] = ()
    values: dict[str, float | None] = field(default_factory=dict)
    reason: str | None = None
    version: int = CHECKS_VERSION

    @property
    def checked(self) -> bool:
        return self.reason is None

    def chips(self) -> list[str]:
        """One chip per flag, saying why ("Colour off: ΔE 23")."""
        return [chip(code, self.values.get(code)) for code in self.flags]

    @classmethod
    def not_checked(cls, reason: str) -> Triage:
        return cls(score=None, reason=reason)
