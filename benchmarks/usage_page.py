"""Usage page benchmark: a ledger with 10,000 jobs over 90 days (credit readings, failed jobs
refunded, some use outside Studio and top-ups), the page's script run timed with AppTest.

Targets (issue 11): a script run of the Usage page <= 0.5 s; the peak memory of that run
<= 50 MB above the idle app (resident set, Linux peak counter reset before the run). Prints the
figures and exits 1 when a target is missed.

    python benchmarks/usage_page.py [--jobs 10000] [--days 90] [--runs 5] [--json]
    python benchmarks/usage_page.py --seed-only DIR   # just write the ledger into DIR
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mirrago import samples  # noqa: E402
from mirrago.ledger import Ledger, batches, credit_readings, jobs  # noqa: E402

TIME_TARGET = 0.5
MEMORY_TARGET_MB = 50.0
USERS = ["ana", "ben", "chloe", "dev-bot", None]
OUTSIDE_DAYS = {23: 40, 51: 120, 52: 65, 77: 30}  # day → credits a script spent elsewhere


def _results(data_dir: Path, rng: random.Random) -> list[str]:
    """A few real sandbox renders as result thumbnails (rows share them)."""
    from PIL import Image

    from mirrago.sandbox import render

    folder = data_dir / "thumbs"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (person, garment) in enumerate(
        zip(samples.persons(), samples.garments(), strict=False)
    ):
        with Image.open(person.path) as p, Image.open(garment.path) as g:
            result = render.compose(p, g, None)
        result.thumbnail((320, 320))
        path = folder / f"bench-{index}.jpg"
        result.convert("RGB").save(path, quality=85)
        paths.append(str(path))
    rng.shuffle(paths)
    return paths


def seed(data_dir: Path, total_jobs: int = 10_000, days: int = 90, seed_value: int = 11) -> Ledger:
    """Write the 90-day ledger into `data_dir` (the app's default SQLite file there)."""
    rng = random.Random(seed_value)
    data_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    now = datetime.now(UTC).replace(microsecond=0)
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0)
    persons, garments = samples.persons(), samples.garments()
    results = _results(data_dir, rng)
    # Plan the work: batches on some weekdays, try-ons every working day, a little CLI.
    plan: list[tuple[datetime, str, str, int]] = []  # (start, source, name, size)
    batch_jobs = int(total_jobs * 0.6)
    batch_days = sorted(rng.sample(range(days), 24))
    for number, day in enumerate(batch_days):
        size = batch_jobs // len(batch_days)
        when = start + timedelta(days=day, hours=rng.randint(9, 16), minutes=rng.randint(0, 59))
        plan.append((when, "batch", f"QA run {number + 1}", size))
    remaining = total_jobs - sum(p[3] for p in plan)
    for _ in range(remaining):
        day = rng.randrange(days)
        when = start + timedelta(
            days=day,
            hours=rng.randint(8, 19),
            minutes=rng.randint(0, 59),
            seconds=rng.randint(0, 59),
        )
        source = "cli:try-on" if rng.random() < 0.07 else "try-on"
        plan.append((when, source, "Try-on", 1))
    plan = [p for p in plan if p[0] < now - timedelta(minutes=5)]
    plan.sort()
    balance, job_rows, reading_rows, batch_rows = 4000, [], [], []
    refunds: list[datetime] = []
    outside_done: set[int] = set()
    for batch_id, (when, source, name, size) in enumerate(plan, start=1):
        batch_rows.append(
            {"id": batch_id, "name": name, "source": source, "created_at": when, "private": False}
        )
        user = rng.choice(USERS)
        for row in range(size):
            at = when + timedelta(seconds=row * 0.25 + rng.random())
            day = (at - start).days
            if day in OUTSIDE_DAYS and day not in outside_done:
                balance -= OUTSIDE_DAYS[day]
                outside_done.add(day)
            while refunds and refunds[0] <= at:
                refunds.pop(0)
                balance += 1
            if balance < 600:
                balance += 5000  # a top-up
            roll = rng.random()
            state = (
                "completed"
                if roll < 0.92
                else "failed"
                if roll < 0.97
                else "uncertain"
                if roll < 0.98
                else "canceled"
            )
            latency = rng.uniform(2.0, 6.0) if source == "batch" else rng.uniform(2.0, 4.5)
            job_id = None if state == "canceled" else f"bench-{batch_id}-{row}"
            person, garment = rng.choice(persons), rng.choice(garments)
            job_rows.append(
                {
                    "batch_id": batch_id,
                    "row_index": row,
                    "target": str(person.path),
                    "garment": str(garment.path),
                    "username": user,
                    "state": state,
                    "job_id": job_id,
                    "credits_before": None if job_id is None else balance,
                    "created_at": at - timedelta(seconds=0.5),
                    "submitted_at": None if not job_id else at,
                    "finished_at": at + timedelta(seconds=latency),
                    "attempts": 1,
                    "error": "The service could not place the garment."
                    if state == "failed"
                    else None,
                    "review_tags": "[]",
                    "updated_at": at,
                    "thumbnail_path": rng.choice(results) if state == "completed" else None,
                    "review_verdict": rng.choice(["pass", "pass", "pass", "fail", None])
                    if source == "batch" and state == "completed"
                    else None,
                }
            )
            if job_id is None:
                continue
            reading_rows.append({"at": at, "credits_before": balance, "job_id": job_id})
            balance -= 1
            if state == "failed":
                refunds.append(at + timedelta(seconds=latency))
                refunds.sort()
    with ledger._write() as conn:  # straight into the tables, as a long history leaves them
        conn.execute(batches.insert(), batch_rows)
        conn.execute(jobs.insert(), job_rows)
        conn.execute(credit_readings.insert(), reading_rows)
    return ledger


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(data_dir: Path, runs: int) -> dict[str, float]:
    from streamlit.testing.v1 import AppTest

    for name in list(os.environ):
        if name.startswith("MIRRAGO_"):
            del os.environ[name]
    os.environ["MIRRAGO_DATA_DIR"] = str(data_dir)
    os.chdir(data_dir.parent)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()  # the idle app: the router, the sidebar and the Try-on page, services started
    started = time.perf_counter()
    at.switch_page("pages/usage.py").run()
    first = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"the Usage page raised: {at.exception}")
    import streamlit as st

    def timed() -> float:
        started = time.perf_counter()
        at.run()
        return time.perf_counter() - started

    warm = [timed() for _ in range(runs)]
    from mirrago.ui.usage import data as usage_data

    cold = []
    for _ in range(max(1, runs // 2)):
        usage_data._figures.clear()  # as when a new job arrives: every figure is computed again
        usage_data._choices.clear()
        cold.append(timed())
    if at.exception:
        raise SystemExit(f"the Usage page raised: {at.exception}")
    peaks = []
    for _ in range(2):
        st.cache_data.clear()
        at.run()
        idle = _rss_kb("VmRSS")
        if not _reset_peak():
            break
        st.cache_data.clear()
        at.run()
        peaks.append((_rss_kb("VmHWM") - idle) / 1024)
    st.cache_data.clear()
    tracemalloc.start()
    at.run()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "first_run_s": first,
        "median_run_s": statistics.median(warm),
        "max_run_s": max(warm),
        "median_cold_run_s": statistics.median(cold),
        "peak_rss_above_idle_mb": max(peaks) if peaks else float("nan"),
        "python_peak_mb": traced_peak / 2**20,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed-only", type=Path, default=None, metavar="DIR")
    args = parser.parse_args()
    if args.seed_only:
        seed(args.seed_only, args.jobs, args.days).close()
        print(f"seeded {args.jobs} jobs over {args.days} days into {args.seed_only}")
        return 0
    with tempfile.TemporaryDirectory(prefix="mirrago-usage-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        seed(data_dir, args.jobs, args.days).close()
        seeded = time.perf_counter() - started
        figures = measure(data_dir, args.runs)
    # The median: a shared 2-core machine stalls single runs; the slowest is printed too.
    ok_time = figures["median_run_s"] <= TIME_TARGET
    peak = figures["peak_rss_above_idle_mb"]
    ok_memory = peak == peak and peak <= MEMORY_TARGET_MB  # NaN: the peak could not be measured
    figures.update(seed_s=seeded, jobs=args.jobs, days=args.days, passed=ok_time and ok_memory)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"Usage page, {args.jobs:,} jobs over {args.days} days (seeded in {seeded:.1f} s)")
        print(f"  first run (cold caches)   {figures['first_run_s']:.3f} s")
        print(
            f"  script run, median of {args.runs}  {figures['median_run_s']:.3f} s   "
            f"(target <= {TIME_TARGET} s: {'ok' if ok_time else 'MISSED'})"
        )
        print(f"  script run, slowest       {figures['max_run_s']:.3f} s")
        print(
            f"  run after new data        {figures['median_cold_run_s']:.3f} s (median; "
            "every figure recomputed)"
        )
        print(
            f"  peak RSS above idle app   {figures['peak_rss_above_idle_mb']:.1f} MB  "
            f"(target <= {MEMORY_TARGET_MB:.0f} MB: "
            f"{'ok' if ok_memory else 'MISSED'})"
        )
        print(f"  Python heap peak (traced) {figures['python_peak_mb']:.1f} MB")
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
