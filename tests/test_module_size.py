"""The package stays readable: every module under `mirrago/` fits in 600 lines (a module that
grows past it holds more than one subject, and is split by subject)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mirrago"
MOST_LINES = 600


def test_no_module_in_the_package_is_over_600_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 50  # the package was found
    over = {name: lines for name, lines in sizes.items() if lines > MOST_LINES}
    assert not over, over
