"""Review and export speed on a finished 500-row batch (issue 10); exits 1 when a target is missed.

- verdict:  a verdict keypress to the next result shown: the Batch page's script run after
            Pass (AppTest timing, the Review view of the real page) <= 0.3 s (median of 20;
            the worst is printed too).
- html/zip: the HTML report and the Images ZIP for 500 results, each <= 10 s and <= 200 MB
            peak memory above the process before the export (each in a fresh process; the
            figure includes reading the finished file back, as the download button does).

Result images are photo-sized (768 x 1024 JPEG with grain, about 250 KB each).

    python benchmarks/review_export.py [--rows 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

VERDICT_TARGET = 0.3
EXPORT_SECONDS = 10.0
EXPORT_MB = 200.0


def _vm(field: str) -> float:
    """A /proc/self/status figure in MB (VmRSS now, VmHWM the peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def build(data_dir: Path, rows: int) -> int:
    from review_data import GARMENTS, PERSONS, finished_batch

    from mirrago.ledger import JobInput, Ledger

    inputs = [
        JobInput(str(PERSONS[i % len(PERSONS)]), str(GARMENTS[(i // len(PERSONS)) % len(GARMENTS)]))
        for i in range(rows)
    ]
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    try:
        batch = finished_batch(ledger, data_dir, inputs, name="bench", result_size=(768, 1024))
        from mirrago import review

        jobs = sorted(ledger.jobs(batch_id=batch.id), key=lambda job: job.row_index)
        for job in jobs[: rows // 2]:  # half reviewed: a report with figures and reasons
            if job.row_index % 5 == 4:
                review.give_verdict(ledger, job, "fail", ["artifacts"], "seam", seconds=4.0)
            else:
                review.give_verdict(ledger, job, "pass", seconds=2.0)
        return batch.id
    finally:
        ledger.close()


def _export_child(data_dir: str, batch_id: int, kind: str, queue: multiprocessing.Queue) -> None:
    from mirrago.export import read_and_remove
    from mirrago.ledger import Ledger

    ledger = Ledger(f"sqlite:///{Path(data_dir) / 'ledger.sqlite3'}")
    ledger.jobs(batch_id=batch_id)  # warm: the idle app has its ledger open
    before = _vm("VmRSS")
    start = time.perf_counter()
    from mirrago.review import exports, report

    make = report.html_file if kind == "html" else exports.zip_file
    path = make(ledger, batch_id)
    data = read_and_remove(path)
    seconds = time.perf_counter() - start
    queue.put(
        {"kind": kind, "seconds": seconds, "mb": _vm("VmHWM") - before, "size_mb": len(data) / 1e6}
    )


def measure_export(data_dir: Path, batch_id: int, kind: str) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_export_child, args=(str(data_dir), batch_id, kind, queue))
    child.start()
    result = queue.get(timeout=600)
    child.join()
    return result


def measure_verdicts(data_dir: Path, batch_id: int, count: int = 20) -> dict:
    os.environ["MIRRAGO_DATA_DIR"] = str(data_dir)
    for name in ("MIRRAGO_BASE_URL", "MIRRAGO_CLIENT_ID", "MIRRAGO_CLIENT_SECRET"):
        os.environ.pop(name, None)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/batch.py")
    at.query_params["batch"] = str(batch_id)
    at.session_state["batch-view"] = "review"
    at.run()
    if at.exception:
        raise SystemExit(f"the page failed: {at.exception[0].value}")
    times = []
    for _ in range(count):
        at.button(key="review-pass")  # present: the Review view is on screen
        start = time.perf_counter()
        at.button(key="review-pass").click().run()
        times.append(time.perf_counter() - start)
    if at.exception:
        raise SystemExit(f"the page failed: {at.exception[0].value}")
    return {"median": statistics.median(times), "worst": max(times), "runs": count}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mirrago-bench-review-") as folder:
        data_dir = Path(folder) / "data"
        started = time.perf_counter()
        batch_id = build(data_dir, args.rows)
        built = time.perf_counter() - started
        figures = {
            "rows": args.rows,
            "setup_s": round(built, 1),
            "html": measure_export(data_dir, batch_id, "html"),
            "zip": measure_export(data_dir, batch_id, "zip"),
            "verdict": measure_verdicts(data_dir, batch_id),
        }
    misses = []
    if figures["verdict"]["median"] > VERDICT_TARGET:
        misses.append(f"verdict run {figures['verdict']['median']:.3f} s > {VERDICT_TARGET} s")
    for kind in ("html", "zip"):
        if figures[kind]["seconds"] > EXPORT_SECONDS:
            misses.append(f"{kind} {figures[kind]['seconds']:.1f} s > {EXPORT_SECONDS} s")
        if figures[kind]["mb"] > EXPORT_MB:
            misses.append(f"{kind} peak +{figures[kind]['mb']:.0f} MB > {EXPORT_MB} MB")
    if args.json:
        print(json.dumps({**figures, "misses": misses}, indent=2))
    else:
        verdict = figures["verdict"]
        print(f"{args.rows} finished rows (setup {figures['setup_s']} s)")
        print(
            f"verdict -> next result: median {verdict['median']:.3f} s, "
            f"worst {verdict['worst']:.3f} s over {verdict['runs']} runs "
            f"(target <= {VERDICT_TARGET} s)"
        )
        for kind in ("html", "zip"):
            f = figures[kind]
            print(
                f"{kind:>4}: {f['seconds']:.2f} s, peak +{f['mb']:.0f} MB, "
                f"file {f['size_mb']:.1f} MB "
                f"(targets <= {EXPORT_SECONDS:.0f} s, <= {EXPORT_MB:.0f} MB)"
            )
        print("MISSED: " + "; ".join(misses) if misses else "all targets met")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
