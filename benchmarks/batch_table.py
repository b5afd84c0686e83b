"""The Batch page's table with many rows, through AppTest (the page's script on a real runtime
of Streamlit's testing harness, on the embedded sandbox). Prints its figures; exits 1 when a
target is missed.

- Importing a 10,000-row CSV through the page's uploader and showing it checked: <= 5 s.
- A rerun with that table shown: median <= 1 s (the check is not redone).
- What the page sends for it (every element, serialized): <= 2 MB, far under Streamlit's
  200 MB message limit (before paging and without previews, 10,000 sample rows sent 58 MB).
- The same with 10,000 rows of the sandbox's own samples (which have previews in small tables).
- A 50,000-row CSV is refused, with the page's limit named, and nothing is offered to run.

    python benchmarks/batch_table.py [--rows 10000] [--big-rows 50000] [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMPORT_TARGET = 5.0  # s
RERUN_TARGET = 1.0  # s
MESSAGE_TARGET = 2 * 1024 * 1024  # bytes


def _csv(rows: int, sample_base: str | None = None) -> bytes:
    """Distinct outside links, or (with `sample_base`) the sandbox's samples, repeated."""
    lines = ["target_image_url,garment_image_url,background,username"]
    if sample_base is None:
        lines += [
            f"https://img{i % 13}.invalid/persons/{i}.jpg,https://img.invalid/g/{i % 97}"
            f".png,{('', 'white', 'studio')[i % 3]},qa-{i % 5}"
            for i in range(rows)
        ]
    else:
        from mirrago import batchtable

        pairs = batchtable.sample_rows(sample_base, count=1_000)
        lines += [
            f"{pairs[i % len(pairs)]['target_image_url']},"
            f"{pairs[i % len(pairs)]['garment_image_url']},,row-{i}"
            for i in range(rows)
        ]
    return ("\n".join(lines) + "\n").encode()


def _sent_bytes(at) -> tuple[int, int]:
    """Bytes of every element the run produced, and of the biggest one."""
    sizes = []

    def walk(node) -> None:
        children = getattr(node, "children", None)
        for child in children.values() if isinstance(children, dict) else children or []:
            proto = getattr(child, "proto", None)
            if proto is not None and hasattr(proto, "SerializeToString"):
                sizes.append(len(proto.SerializeToString()))
            walk(child)

    walk(at.main)
    return sum(sizes), max(sizes, default=0)


def _page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/batch.py").run()
    if at.exception:
        raise SystemExit(f"the page raised: {at.exception}")
    return at


def _import(at, name: str, data: bytes) -> float:
    started = time.perf_counter()
    at.file_uploader(key="batch-import").upload(name, data, "text/csv").run()
    elapsed = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"the page raised: {at.exception}")
    return elapsed


def table_figures(name: str, data: bytes, runs: int) -> dict:
    at = _page()
    imported = _import(at, name, data)
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        at.run()
        timings.append(time.perf_counter() - started)
    total, largest = _sent_bytes(at)
    run = at.button(key="batch-run")
    rerun = statistics.median(timings)
    return {
        "rows": len(at.session_state["batch-table"]),
        "import_s": round(imported, 3),
        "rerun_median_s": round(rerun, 3),
        "rerun_max_s": round(max(timings), 3),
        "sent_bytes": total,
        "largest_element_bytes": largest,
        "run_button": run.label,
        "ok": imported <= IMPORT_TARGET
        and rerun <= RERUN_TARGET
        and total <= MESSAGE_TARGET
        and not at.exception,
    }


def refusal_figures(rows: int) -> dict:
    at = _page()
    elapsed = _import(at, "huge.csv", _csv(rows))
    notes = [t.value for t in at.error if "Nothing imported" in t.value]
    run = at.button(key="batch-run")
    return {
        "big_rows": rows,
        "big_import_s": round(elapsed, 3),
        "big_message": notes[0] if notes else "",
        "big_ok": bool(notes)
        and "10,000" in notes[0]
        and run.disabled
        and not at.session_state["batch-table"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--big-rows", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ["MIRRAGO_DATA_DIR"] = str(Path(folder) / "data")
        for name in (
            "MIRRAGO_BASE_URL",
            "MIRRAGO_CLIENT_ID",
            "MIRRAGO_CLIENT_SECRET",
            "MIRRAGO_DATABASE_URL",
        ):
            os.environ.pop(name, None)
        os.chdir(folder)
        links = table_figures("links.csv", _csv(args.rows), args.runs)
        from mirrago.config import load_settings
        from mirrago.ui import session

        sandbox = session.services_for(load_settings()).backend.base_url
        samples = table_figures("samples.csv", _csv(args.rows, sandbox), args.runs)
        refused = refusal_figures(args.big_rows)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {"links": links, "samples": samples, **refused, "peak_rss_mb": round(peak_mb)}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for label, found in (("links", links), ("sandbox samples", samples)):
            print(
                f"{found['rows']:,} rows of {label}: import+check+show {found['import_s']} s "
                f"(target <= {IMPORT_TARGET} s), rerun median {found['rerun_median_s']} s, max "
                f"{found['rerun_max_s']} s (target <= {RERUN_TARGET} s), page sent "
                f"{found['sent_bytes']:,} bytes, largest element "
                f"{found['largest_element_bytes']:,} (target <= {MESSAGE_TARGET:,}); "
                f"{found['run_button']!r} {'ok' if found['ok'] else 'MISSED'}"
            )
        print(
            f"{args.big_rows:,}-row CSV: refused in {refused['big_import_s']} s: "
            f"{refused['big_message']!r} {'ok' if refused['big_ok'] else 'MISSED'}"
        )
        print(f"process peak memory (everything above, one process): {peak_mb:,.0f} MB")
    return 0 if links["ok"] and samples["ok"] and refused["big_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
