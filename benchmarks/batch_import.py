"""Importing batch files on the Batch page: big CSVs, zip bombs named .xlsx and a tiny workbook
of many rows, each through the page's path (batchtable.import_file, then check_table on what
came in). Prints its figures; exits 1 when a target is missed.

Each case runs in a fresh Python process, so one case's memory peak does not hide another's:
the time is import + check of the file's bytes (read from disk inside the timing), the peak is
the whole process's resident memory (VmHWM, interpreter and imports included; Linux's
ru_maxrss would carry the launching process's peak over the exec). One more case reads the
50,000-row CSV as `mirrago batch` does (read_batch_csv: up to 100,000 rows).

Targets: a zip bomb (104 KB whose shared string is 100 MB, and a 409 KB one of 400 MB) is
refused in < 2 s with < 200 MB peak; 10,000 CSV rows import and check in <= 5 s; files past the
page's 10,000 rows (a 50,000-row CSV, a 200,000-row workbook) are refused, in < 2 s.

    python benchmarks/batch_import.py [--json]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

BOMB_SECONDS, BOMB_MB = 2.0, 200
IMPORT_SECONDS = 5.0
REFUSE_SECONDS = 2.0

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org'
        '/package/2006/content-types"><Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
        f'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
        f'"{_TYPE}.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" '
        f'ContentType="{_TYPE}.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" '
        f'ContentType="{_TYPE}.sharedStrings+xml"/></Types>'
    ),
    "_rels/.rels": (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG}"><Relationship '
        f'Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_NS}" xmlns:r="{_REL}">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG}"><Relationship '
        f'Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/><Relationship '
        f'Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
    ),
}


# --------------------------------------------------------------------------- inputs


def _write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["target_image_url", "garment_image_url", "background", "username"])
        for n in range(rows):
            writer.writerow(
                [
                    f"https://images.example.com/persons/p{n:06d}.jpg",
                    f"https://images.example.com/garments/g{n % 500:04d}.png",
                    ("", "white", "studio")[n % 3],
                    f"qa-{n % 7}",
                ]
            )


def _workbook(path: Path, sheet_rows: bytes, shared: bytes) -> None:
    """A minimal .xlsx, written part by part (the bombs are never whole in memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in _PARTS.items():
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            part.write(f'<?xml version="1.0"?><worksheet xmlns="{_NS}"><sheetData>'.encode())
            part.write(sheet_rows)
            part.write(b"</sheetData></worksheet>")
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            part.write(f'<?xml version="1.0"?><sst xmlns="{_NS}">'.encode())
            for chunk in shared if isinstance(shared, list) else [shared]:
                part.write(chunk)
            part.write(b"</sst>")


def _bomb(path: Path, megabytes: int) -> None:
    """The header's first cell is a shared string of `megabytes` MB of one letter."""
    letters = b"a" * (1 << 20)
    header = b'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
    _workbook(
        path,
        header,
        [b"<si><t>", *[letters] * megabytes, b"</t></si><si><t>garment_image_url</t></si>"],
    )


def _many_rows(path: Path, rows: int) -> None:
    """`rows` identical rows and no <dimension>: openpyxl would parse it all to size it."""
    row = b'<row><c t="s"><v>2</v></c><c t="s"><v>3</v></c></row>'
    header = b'<row><c t="s"><v>0</v></c><c t="s"><v>1</v></c></row>'
    shared = b"".join(
        f"<si><t>{text}</t></si>".encode()
        for text in (
            "target_image_url",
            "garment_image_url",
            "https://images.example.com/p.jpg",
            "https://images.example.com/g.png",
        )
    )
    _workbook(path, header + row * (rows - 1), shared)


def _xlsx_rows(path: Path, rows: int) -> None:
    """A workbook as openpyxl writes one (with its <dimension>), `rows` distinct rows."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["target_image_url", "garment_image_url", "username"])
    for n in range(rows):
        sheet.append(
            [
                f"https://images.example.com/persons/p{n:06d}.jpg",
                f"https://images.example.com/garments/g{n % 500:04d}.png",
                f"qa-{n % 7}",
            ]
        )
    book.save(path)


CASES = {
    # name: (file name, make, target seconds, target MB or None, expected outcome)
    "csv-10000": ("rows10000.csv", lambda p: _write_csv(p, 10_000), IMPORT_SECONDS, None, "read"),
    "csv-50000": (
        "rows50000.csv",
        lambda p: _write_csv(p, 50_000),
        REFUSE_SECONDS,
        None,
        "refused",
    ),
    "cli-csv-50000": (
        "rows50000.csv",
        lambda p: _write_csv(p, 50_000),
        5 * IMPORT_SECONDS,
        None,
        "read",
    ),
    "xlsx-10000": ("rows10000.xlsx", lambda p: _xlsx_rows(p, 10_000), IMPORT_SECONDS, None, "read"),
    "bomb-100MB": ("bomb100.xlsx", lambda p: _bomb(p, 100), BOMB_SECONDS, BOMB_MB, "refused"),
    "bomb-400MB": ("bomb400.xlsx", lambda p: _bomb(p, 400), BOMB_SECONDS, BOMB_MB, "refused"),
    "xlsx-200000-rows": (
        "rows200000.xlsx",
        lambda p: _many_rows(p, 200_000),
        REFUSE_SECONDS,
        BOMB_MB,
        "refused",
    ),
}


# --------------------------------------------------------------------------- one case


def peak_mb() -> float:
    """This process's peak resident memory since its exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KB


def measure(path: Path, cli: bool) -> dict:
    """Import and check `path` as the Batch page does (or as `mirrago batch` reads it), in
    this fresh process."""
    from mirrago import batchfile, batchtable

    before_mb = peak_mb()
    started = time.perf_counter()
    if cli:
        table = batchfile.read_batch_csv(path)
        rows, ready, problems = len(table.rows), len(table.valid), table.problems
    else:
        data = path.read_bytes()
        imported = batchtable.import_file(path.name, data)
        checked = batchtable.check_table(imported.rows, batchtable.Uploads())
        rows, problems = len(imported.rows), imported.problems
        ready = sum(1 for row in checked if row.job is not None)
    return {
        "seconds": time.perf_counter() - started,
        "peak_mb": peak_mb(),
        "before_mb": before_mb,
        "rows": rows,
        "ready": ready,
        "problem": problems[0] if problems else "",
    }


def run_case(name: str, folder: Path) -> dict:
    file_name, make, *_ = CASES[name]
    path = folder / file_name
    if not path.exists():
        make(path)
    mode = ["--cli"] if name.startswith("cli-") else []
    child = subprocess.run(
        [sys.executable, __file__, "--measure", str(path), *mode],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"{name}: the measuring process failed:\n{child.stderr[-2000:]}")
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    return {"case": name, "file_kb": path.stat().st_size / 1024, **figures}


def missed(result: dict) -> list[str]:
    _, _, seconds, megabytes, outcome = CASES[result["case"]]
    misses = []
    if result["seconds"] > seconds:
        misses.append(f"took {result['seconds']:.2f} s (target {seconds:g} s)")
    if megabytes is not None and result["peak_mb"] >= megabytes:
        misses.append(f"peak {result['peak_mb']:.0f} MB (target < {megabytes} MB)")
    refused = result["rows"] == 0 and bool(result["problem"])
    if refused != (outcome == "refused"):
        misses.append(f"expected the file to be {outcome}")
    return misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child's side
    parser.add_argument("--cli", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.cli)))
        return 0

    with tempfile.TemporaryDirectory(prefix="mirrago-bench-") as folder:
        results = [run_case(name, Path(folder)) for name in CASES]
    failures = [(r["case"], miss) for r in results for miss in missed(r)]
    if args.json:
        print(json.dumps({"results": results, "failures": failures}, indent=2))
    else:
        out = io.StringIO()
        out.write(
            f"{'case':<18}{'file':>10}{'time':>9}{'peak RSS':>10}{'(start)':>9}"
            f"{'rows':>8}{'ready':>8}  outcome\n"
        )
        for r in results:
            outcome = r["problem"][:90] + ("…" if len(r["problem"]) > 90 else "") or "read"
            out.write(
                f"{r['case']:<18}{r['file_kb']:>8.0f}KB{r['seconds']:>8.2f}s"
                f"{r['peak_mb']:>8.0f}MB{r['before_mb']:>7.0f}MB{r['rows']:>8}"
                f"{r['ready']:>8}  {outcome}\n"
            )
        print(out.getvalue(), end="")
        for case, miss in failures:
            print(f"MISSED {case}: {miss}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
