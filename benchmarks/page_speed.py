"""What a QA reviewer waits for in the browser (issue 25), timed in headless Chromium against
`streamlit run app.py`. Prints its figures; exits 1 when a target is missed.

- Review, finished 500-row batch: key press P -> the next result shown (its title changed,
  every image loaded) and the Streamlit run over; median <= 0.3 s, worst <= 0.6 s over 20
  presses. The same for the gallery detail dialog's Next (20 clicks).
- A finished 5,000-row batch: Results open (a fresh page at `/batch?batch=<id>` until the
  gallery is drawn and the run over) <= 1.5 s; Review open (the view switch) <= 1.5 s; a
  gallery page change <= 0.5 s (medians of `--repeats`, the worst printed too).
- Usage with 10,000 jobs (benchmarks/usage_page.py's ledger): the page open <= 1 s.

"The run over": `stApp`'s script state is notRunning, connected, nothing stale, no skeleton.
Times are taken in Python around Playwright calls, the condition polled in the page on every
animation frame. Batches are written straight into a temporary data dir's ledger with real
result and thumbnail files (benchmarks/batch_page.py's `seed`).

    python benchmarks/page_speed.py [--presses 20] [--repeats 3] [--json] [--shots DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests" / "browser")]

from batch_page import seed  # noqa: E402
from browser_app import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from mirrago.ledger import Ledger  # noqa: E402

KEY_MEDIAN, KEY_WORST = 0.3, 0.6
OPEN_TARGET, PAGE_TARGET, USAGE_TARGET = 1.5, 0.5, 1.0
# A QA reviewer opens batches that finished earlier: in the first minutes after a batch ends,
# the Batch page also looks for the quality checks' findings every LIVE_REFRESH seconds.
FINISHED_AGO = timedelta(hours=1)
LIVE_REFRESH = 1.5

# True once the app is connected, its run over, nothing stale or loading, every image loaded,
# the element `selector` exists and its text differs from `before` (null: any text).
_SETTLED = """([selector, before]) => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning'
      || app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  if (document.querySelector("[data-stale='true'], [data-testid='stMain'] "
      + "[data-testid='stSkeleton']")) return false;
  const element = document.querySelector(selector);
  if (!element) return false;
  if (before !== null && element.innerText === before) return false;
  return Array.from(document.images).every(image => image.complete);
}"""


# The first card's key (its row id): another page is on screen when it changes. Read from the
# class names, not the page's text (`innerText` lays the page out again on every frame it is
# polled, which slows the page being measured).
_FIRST_CARD = """() => {
  const card = document.querySelector(".st-key-batch-grid [class*='st-key-batch-card-']");
  return card ? Array.from(card.classList).find(c => c.startsWith('st-key-batch-card-')) : null;
}"""


def settle(page: Page, selector: str, before: str | None = None, timeout: float = 120) -> None:
    page.wait_for_function(_SETTLED, arg=[selector, before], polling="raf", timeout=timeout * 1e3)


def text(page: Page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


def timed(action, page: Page, selector: str, before: str | None) -> float:  # noqa: ANN001
    started = time.perf_counter()
    action()
    settle(page, selector, before)
    return time.perf_counter() - started


def _figures(times: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(times), 3),
        "worst_s": round(max(times), 3),
        "all_s": [round(t, 3) for t in times],
    }


def _view(page: Page, label: str) -> None:
    """Click one of the Batch page's views (the segmented control at the top)."""
    page.locator("[data-testid='stMain'] .st-key-batch-view button").filter(
        has_text=label
    ).first.click()


def review_presses(page: Page, url: str, batch_id: int, presses: int) -> list[float]:
    page.goto(f"{url}/batch?batch={batch_id}")
    settle(page, ".st-key-batch-grid")
    _view(page, "Review & reports")
    settle(page, ".st-key-review-title")
    times = []
    for _ in range(presses):
        title = text(page, ".st-key-review-title")
        times.append(timed(lambda: page.keyboard.press("p"), page, ".st-key-review-title", title))
    return times


def detail_steps(page: Page, url: str, batch_id: int, first_row: int, steps: int) -> list[float]:
    page.goto(f"{url}/batch?batch={batch_id}")
    settle(page, ".st-key-batch-grid")
    page.locator(f".st-key-batch-open-{first_row} button").click()
    settle(page, ".st-key-batch-detail-nav")
    times = []
    for _ in range(steps):
        nav = text(page, ".st-key-batch-detail-nav")
        button = page.locator(".st-key-batch-detail-next button")
        times.append(timed(button.click, page, ".st-key-batch-detail-nav", nav))
    return times


def big_batch(page: Page, url: str, batch_id: int, repeats: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"results_open": [], "review_open": [], "page_change": []}
    for _ in range(repeats):
        figures["results_open"].append(
            timed(
                lambda: page.goto(f"{url}/batch?batch={batch_id}"), page, ".st-key-batch-grid", None
            )
        )
        shown = page.evaluate(_FIRST_CARD)
        # the pagination's "next" arrow is its last button
        arrow = page.locator(".st-key-batch-gallery-page button").last
        started = time.perf_counter()
        arrow.click()
        page.wait_for_function(
            f"(before) => ({_FIRST_CARD})() !== before", arg=shown, polling="raf"
        )
        settle(page, ".st-key-batch-grid")
        figures["page_change"].append(time.perf_counter() - started)
        figures["review_open"].append(
            timed(lambda: _view(page, "Review & reports"), page, ".st-key-review-title", None)
        )
    return figures


def usage_open(page: Page, url: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        times.append(
            timed(
                lambda: page.goto(f"{url}/usage"),
                page,
                "[data-testid='stMain'] [data-testid='stMetric']",
                None,
            )
        )
    return times


def _seed_batches(data_dir: Path, finished_ago: timedelta) -> dict[str, int]:
    review_id = seed(data_dir, 500, distinct=64, name="Review 500", finished_ago=finished_ago)
    big_id = seed(data_dir, 5000, distinct=64, name="Big 5000", finished_ago=finished_ago)
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    try:
        first = min(row.id for row in ledger.jobs(batch_id=review_id))
    finally:
        ledger.close()
    return {"review": review_id, "big": big_id, "review_first_row": first}


def measure(
    presses: int,
    repeats: int,
    shots: Path | None,
    only: set[str] | None = None,
    finished_ago: timedelta = FINISHED_AGO,
) -> dict:
    import usage_page

    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="mirrago-page-speed-") as folder:
        root = Path(folder)
        started = time.perf_counter()
        ids = _seed_batches(root / "batches" / "data", finished_ago)
        usage_page.seed(root / "usage" / "data").close()
        figures["seed_s"] = round(time.perf_counter() - started, 1)
        batches_app = start_app(root / "batches")
        usage_app = start_app(root / "usage")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
                )
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                context.set_default_timeout(120_000)
                page = context.new_page()
                # warm up: the first visit starts the app's services
                page.goto(f"{batches_app.url}/batch?batch={ids['review']}")
                settle(page, ".st-key-batch-grid")
                if not only or "review" in only:
                    figures["review_p"] = _figures(
                        review_presses(page, batches_app.url, ids["review"], presses)
                    )
                    if shots:
                        page.screenshot(path=str(shots / "page-speed-review.png"))
                if not only or "detail" in only:
                    figures["detail_next"] = _figures(
                        detail_steps(
                            page, batches_app.url, ids["review"], ids["review_first_row"], presses
                        )
                    )
                    if shots:
                        page.screenshot(path=str(shots / "page-speed-detail.png"))
                if not only or "big" in only:
                    big = big_batch(page, batches_app.url, ids["big"], repeats)
                    figures.update({name: _figures(times) for name, times in big.items()})
                    if shots:
                        page.screenshot(path=str(shots / "page-speed-big-review.png"))
                if not only or "usage" in only:
                    page.goto(f"{usage_app.url}/usage")  # warm up the second app
                    settle(page, "[data-testid='stMain'] [data-testid='stMetric']")
                    figures["usage_open"] = _figures(usage_open(page, usage_app.url, repeats))
                browser.close()
        finally:
            stop_app(batches_app)
            stop_app(usage_app)
    return figures


def verdicts(figures: dict) -> dict[str, bool]:
    checks = {
        "review_p": lambda: (
            figures["review_p"]["median_s"] <= KEY_MEDIAN
            and figures["review_p"]["worst_s"] <= KEY_WORST
        ),
        "detail_next": lambda: (
            figures["detail_next"]["median_s"] <= KEY_MEDIAN
            and figures["detail_next"]["worst_s"] <= KEY_WORST
        ),
        "results_open": lambda: figures["results_open"]["median_s"] <= OPEN_TARGET,
        "review_open": lambda: figures["review_open"]["median_s"] <= OPEN_TARGET,
        "page_change": lambda: figures["page_change"]["median_s"] <= PAGE_TARGET,
        "usage_open": lambda: figures["usage_open"]["median_s"] <= USAGE_TARGET,
    }
    return {name: check() for name, check in checks.items() if name in figures}


TARGETS = {
    "review_p": f"median <= {KEY_MEDIAN} s, worst <= {KEY_WORST} s",
    "detail_next": f"median <= {KEY_MEDIAN} s, worst <= {KEY_WORST} s",
    "results_open": f"median <= {OPEN_TARGET} s",
    "review_open": f"median <= {OPEN_TARGET} s",
    "page_change": f"median <= {PAGE_TARGET} s",
    "usage_open": f"median <= {USAGE_TARGET} s",
}
LABELS = {
    "review_p": "Review, 500 rows: P -> next result",
    "detail_next": "Detail dialog, 500 rows: Next",
    "results_open": "5,000 rows: Results open",
    "review_open": "5,000 rows: Review open",
    "page_change": "5,000 rows: gallery page change",
    "usage_open": "Usage, 10,000 jobs: page open",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--shots", type=Path, default=None, help="save screenshots here")
    parser.add_argument(
        "--only", default="", help="some of: review,detail,big,usage (comma-separated)"
    )
    parser.add_argument(
        "--just-finished",
        action="store_true",
        help="batches that finished just now (the page looks for their quality checks every "
        f"{LIVE_REFRESH} s for the first minutes) instead of an hour ago",
    )
    args = parser.parse_args()
    only = {part.strip() for part in args.only.split(",") if part.strip()} or None
    ago = timedelta(0) if args.just_finished else FINISHED_AGO
    figures = measure(args.presses, args.repeats, args.shots, only, ago)
    passed = verdicts(figures)
    if args.json:
        print(json.dumps({**figures, "passed": passed}, indent=2))
    else:
        print(f"seeded 500 + 5,000 rows and a 10,000-job ledger in {figures['seed_s']} s")
        for name, label in LABELS.items():
            if name not in figures:
                continue
            got = figures[name]
            print(
                f"{label:40} median {got['median_s']:.3f} s, worst {got['worst_s']:.3f} s "
                f"(n={len(got['all_s'])}; target {TARGETS[name]}) "
                f"{'ok' if passed[name] else 'MISSED'}"
            )
    return 0 if all(passed.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
