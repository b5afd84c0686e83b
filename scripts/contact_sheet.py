"""Render every sample person × every sample garment through the sandbox renderer and write
one contact sheet PNG (rows: persons, columns: garments), for looking at the renderer's output.

    .venv/bin/python scripts/contact_sheet.py [--background original|white|studio] [--out PATH]

Writes test-artifacts/contact-sheet-<background>.png by default (git-ignored).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mirrago.sandbox import render  # noqa: E402

SAMPLES = ROOT / "mirrago" / "samples"
TILE = (300, 400)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--background", default="original", choices=render.BACKGROUND_CHOICES)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--tile", type=int, default=TILE[0], help="tile width in px")
    args = parser.parse_args(argv)
    tile = (args.tile, args.tile * 4 // 3)
    persons = sorted((SAMPLES / "persons").iterdir())
    garments = sorted((SAMPLES / "garments").iterdir())
    persons = [p for p in persons if p.suffix in {".jpg", ".png"}]
    garments = [g for g in garments if g.suffix in {".jpg", ".png"}]
    header = 28
    sheet = Image.new(
        "RGB", (tile[0] * (len(garments) + 1), header + tile[1] * len(persons)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    background = None if args.background == "original" else args.background
    for column, garment_path in enumerate(garments, start=1):
        draw.text((column * tile[0] + 6, 8), garment_path.stem, fill=(0, 0, 0))
    for row, person_path in enumerate(persons):
        top = header + row * tile[1]
        with Image.open(person_path) as person:
            thumb = person.convert("RGB")
            thumb.thumbnail(tile)
            sheet.paste(thumb, (0, top))
        for column, garment_path in enumerate(garments, start=1):
            with Image.open(person_path) as person, Image.open(garment_path) as garment:
                started = time.perf_counter()
                result = render.compose(person, garment, background)
                took = time.perf_counter() - started
            result.thumbnail(tile)
            sheet.paste(result, (column * tile[0], top))
            draw.text((column * tile[0] + 4, top + 4), f"{took * 1000:.0f} ms", fill=(255, 0, 0))
    out = args.out or ROOT / "test-artifacts" / f"contact-sheet-{args.background}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
