"""The review tools of the Batch page in real headless Chromium: 20 results reviewed with the
keyboard alone, the downloaded Results CSV, the HTML report opened from disk (every card with
its images, no network request), the 3 × 4 matrix, two 6-pair runs judged with keys, two
reviewers in two browsers on one batch (no silent overwrite, Undo takes back only one's own),
the reviewer's name kept over a refresh, and the result under review above the fold.

One app server for the module, its ledger filled with finished batches on known data before it
starts (tests/review_data.py). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_app import ARTIFACTS, AppServer, start_app, stop_app
from browser_helpers import assert_no_exception, download, keyed, screenshot, wait_for_app
from playwright.sync_api import Browser, BrowserContext, Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from review_data import finished_batch, grid_pairs  # noqa: E402

from mirrago import review  # noqa: E402
from mirrago.ledger import Ledger  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def review_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppServer, dict]]:
    workdir = tmp_path_factory.mktemp("review-app")
    data_dir = workdir / "data"
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    try:
        ids = {
            "twenty": finished_batch(ledger, data_dir, grid_pairs(4, 5), name="Twenty").id,
            "matrix": finished_batch(ledger, data_dir, grid_pairs(3, 4), name="Grid 3x4").id,
            "before": finished_batch(
                ledger, data_dir, grid_pairs(2, 3), name="Run A", prefix="a"
            ).id,
            "after": finished_batch(
                ledger, data_dir, grid_pairs(2, 3), name="Run B", prefix="b"
            ).id,
            "shared": finished_batch(
                ledger, data_dir, grid_pairs(2, 2), name="Shared", prefix="s"
            ).id,
            "refresh": finished_batch(
                ledger, data_dir, grid_pairs(1, 2), name="Refresh", prefix="r"
            ).id,
            "layout": finished_batch(
                ledger, data_dir, grid_pairs(2, 3), name="Layout", prefix="l"
            ).id,
        }
        _review_some(ledger, ids["matrix"])
        _review_some(ledger, ids["layout"], upto=3)  # fails by reason and worst lists shown
    finally:
        ledger.close()
    server = start_app(workdir)
    yield server, ids
    stop_app(server)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(server.log_path, ARTIFACTS / "streamlit-review.log")


HOSTILE_NOTE = "<img src=x onerror=alert(1)> sleeve **melts**"


def _review_some(ledger: Ledger, batch_id: int, upto: int = 12) -> None:
    """The 3 × 4 batch, partly reviewed: the matrix and the report have colours and figures.
    (`upto`: only the verdicts on its first rows.)"""
    jobs = sorted(ledger.jobs(batch_id=batch_id), key=lambda job: job.row_index)
    plan = {
        0: ("pass", []),
        1: ("fail", ["garment-distorted", "artifacts"]),
        2: ("pass", []),
        4: ("pass", []),
        5: ("fail", ["wrong-garment"]),
        6: ("pass", []),
        8: ("fail", ["face-body-changed"]),
        9: ("fail", ["garment-distorted"]),
    }
    for index, (verdict, reasons) in plan.items():
        if index >= upto:
            continue
        note = HOSTILE_NOTE if index == 1 else None
        review.give_verdict(
            ledger, jobs[index], verdict, reasons, note, reviewer="QA Ana", seconds=3.0 + index
        )


@pytest.fixture
def review_page(browser: Browser, review_server: tuple[AppServer, dict]) -> Iterator[Page]:
    server, _ = review_server
    context: BrowserContext = browser.new_context(
        viewport={"width": 1440, "height": 900}, base_url=server.url, accept_downloads=True
    )
    context.set_default_timeout(90_000)  # a deadline, as in conftest.py
    page = context.new_page()
    yield page
    context.close()


def _open_review(page: Page, batch_id: int) -> None:
    page.goto(f"/batch?batch={batch_id}")
    wait_for_app(page, timeout=120)  # the first visit starts the services (a loaded CI box)
    page.get_by_role("button", name="Review & reports").or_(
        page.get_by_text("Review & reports", exact=True)
    ).first.click()
    wait_for_app(page)
    expect(keyed(page, "review-summary")).to_be_visible()


def _row_on_screen(page: Page) -> str:
    return keyed(page, "review-title").inner_text().split("·")[0].strip()


def _verdict_key(page: Page, key: str, last: bool = False) -> None:
    """Press a verdict key; wait until the next result is on screen (or, for the last one,
    until every result is reviewed)."""
    before = _row_on_screen(page)
    for attempt in range(2):
        page.keyboard.press(key)
        try:
            if last:
                expect(page.get_by_text("Every result in this view is reviewed.")).to_be_visible()
            else:
                title = keyed(page, "review-title")
                expect(title).not_to_have_text(re.compile(rf"^\s*{before} ·"))
            break
        except AssertionError:
            # A key pressed while a busy page was still drawing found no listener (nothing
            # changed in 45 s): focus the page again and press once more.
            if attempt or _row_on_screen(page) != before:
                raise
            page.locator("[data-testid='stHeading']").first.click()
    wait_for_app(page)


def _press(page: Page, key: str) -> None:
    page.keyboard.press(key)
    wait_for_app(page)


def _metric(page: Page, label: str) -> str:
    metric = page.locator("[data-testid='stMetric']").filter(has_text=label).first
    return metric.locator("[data-testid='stMetricValue']").inner_text().strip()


def _download(page: Page, label: str, target: Path) -> Path:
    keyed(page, "review-export").locator("button").first.click()
    download(page, page.get_by_role("button", name=label)).save_as(target)
    page.keyboard.press("Escape")
    return target


def test_twenty_results_reviewed_with_the_keyboard_alone(
    review_page: Page, review_server: tuple[AppServer, dict], tmp_path: Path
) -> None:
    page = review_page
    _open_review(page, review_server[1]["twenty"])
    page.locator("[data-testid='stHeading']").first.click()  # focus the page, not a field
    seen = []
    for index in range(20):
        seen.append(_row_on_screen(page))
        if index % 4 == 3:
            _press(page, "2")  # wrong garment
            expect(keyed(page, "review-reason-wrong-garment").locator("button")).to_have_attribute(
                "kind", "primary"
            )
            _verdict_key(page, "f", last=index == 19)
        else:
            _verdict_key(page, "p", last=index == 19)
        if index == 9:
            screenshot(page, "review-keyboard-midway")
    assert seen == [f"Row {n}" for n in range(1, 21)]
    expect(page.get_by_text("Every result in this view is reviewed.")).to_be_visible()
    assert _metric(page, "Reviewed") == "20 of 20"
    assert _metric(page, "Review pass") == "75%"
    assert_no_exception(page)
    screenshot(page, "review-keyboard-done")

    data = _download(page, "Results CSV", tmp_path / "results.csv").read_text("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(data)))
    assert [row["verdict"] for row in rows] == (["pass"] * 3 + ["fail"]) * 5
    assert {row["reasons"] for row in rows if row["verdict"] == "fail"} == {"wrong-garment"}
    assert all(row["review_seconds"] for row in rows)


def test_the_html_report_opens_from_disk_with_every_image_and_no_request(
    review_page: Page, review_server: tuple[AppServer, dict], browser: Browser, tmp_path: Path
) -> None:
    _open_review(review_page, review_server[1]["matrix"])
    report = _download(review_page, "HTML report", tmp_path / "report.html")
    offline = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    requests: list[str] = []
    page = offline.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.resolve().as_uri())
    page.wait_for_load_state("load")
    assert page.locator("article.card").count() == 12
    images = page.locator("img")
    assert images.count() == 12 * 3 + 12  # each card: result + 2 inputs; the matrix: 12
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    )
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
    assert page.locator("article.card .note").first.inner_text() == HOSTILE_NOTE  # as text
    assert page.locator("article.card .badge.fail").count() == 4
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-html-report.png"), full_page=True)
    offline.close()


def test_the_matrix_renders_three_by_four(
    review_page: Page, review_server: tuple[AppServer, dict]
) -> None:
    page = review_page
    _open_review(page, review_server[1]["matrix"])
    page.get_by_text("Matrix", exact=True).click()
    wait_for_app(page)
    matrix = keyed(page, "review-matrix")
    expect(matrix.locator("[data-testid='stImage'] img")).to_have_count(12)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.st-key-review-matrix img'))"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    expect(matrix.get_by_role("button", name="Row 7", exact=True)).to_be_visible()
    assert_no_exception(page)
    screenshot(page, "review-matrix")
    matrix.get_by_role("button", name="Row 7", exact=True).click()
    wait_for_app(page)
    assert _row_on_screen(page) == "Row 7"


def test_two_runs_are_judged_with_keys_and_summarised(
    review_page: Page, review_server: tuple[AppServer, dict]
) -> None:
    page = review_page
    _open_review(page, review_server[1]["after"])
    page.get_by_text("Compare runs", exact=True).click()
    wait_for_app(page)
    expect(keyed(page, "compare-summary")).to_be_visible()
    page.locator("[data-testid='stHeading']").first.click()
    for done, key in enumerate("213322", start=1):
        page.keyboard.press(key)  # wait for each judgement to land before the next key
        judged = page.locator("[data-testid='stMetric']").filter(has_text="Judged")
        expect(judged.locator("[data-testid='stMetricValue']")).to_have_text(f"{done} of 6")
        wait_for_app(page)
    assert _metric(page, "Judged") == "6 of 6"
    assert (_metric(page, "Improved"), _metric(page, "Regressed"), _metric(page, "Unchanged")) == (
        "3",
        "1",
        "2",
    )
    assert_no_exception(page)
    screenshot(page, "review-compare")


def _reviewer_context(browser: Browser, server: AppServer) -> Page:
    """A browser of its own (another reviewer), at 1440 × 900."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=server.url)
    context.set_default_timeout(90_000)
    return context.new_page()


def _sign(page: Page, name: str) -> None:
    """Type the reviewer's name and commit it (Enter)."""
    field = keyed(page, "reviewer").locator("input")
    field.fill(name)
    field.press("Enter")
    wait_for_app(page)
    page.wait_for_url(re.compile(r"[?&]reviewer="))


def _click(page: Page, key: str) -> None:
    keyed(page, key).get_by_role("button").first.click()
    wait_for_app(page)


def _expect_row(page: Page, row: str) -> None:
    """Until `row` is the result on screen (the run a click started has drawn it)."""
    expect(keyed(page, "review-title")).to_contain_text(re.compile(rf"^\s*{row} ·"))
    wait_for_app(page)


def _history(data_dir: Path, batch_id: int) -> list[tuple]:
    """(row, reviewer, verdict, undone) of every verdict on the batch, oldest first."""
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    try:
        jobs = {job.id: job.row_index + 1 for job in ledger.jobs(batch_id=batch_id)}
        return [
            (jobs[r.row_id], r.reviewer, r.verdict, r.undone)
            for r in ledger.reviews(batch_id=batch_id)
        ]
    finally:
        ledger.close()


def test_two_reviewers_in_two_browsers_never_overwrite_each_other_silently(
    browser: Browser, review_server: tuple[AppServer, dict]
) -> None:
    server, ids = review_server
    ana = _reviewer_context(browser, server)
    bo = _reviewer_context(browser, server)
    try:
        for page, name in ((ana, "Ana"), (bo, "Bo")):
            _open_review(page, ids["shared"])
            _sign(page, name)
            assert _row_on_screen(page) == "Row 1"
        _click(ana, "review-pass")  # Ana passes row 1 while Bo's page shows it "To review"
        _expect_row(ana, "Row 2")
        _click(bo, "review-reason-artifacts")
        _click(bo, "review-fail")
        warning = bo.locator("[data-testid='stAlert']").filter(has_text="Ana judged row 1 Pass")
        expect(warning).to_be_visible()
        assert _history(server.data_dir, ids["shared"]) == [(1, "Ana", "pass", False)]
        screenshot(bo, "review-two-reviewers-conflict")
        _click(bo, "review-replace")  # Bo chose: replace with mine
        _expect_row(bo, "Row 2")
        assert _history(server.data_dir, ids["shared"]) == [
            (1, "Ana", "pass", False),
            (1, "Bo", "fail", False),
        ]
        _click(ana, "review-undo")  # Ana's last verdict is no longer the row's: hers to keep
        said = ana.locator("[data-testid='stAlert']").filter(has_text="only your own verdicts")
        expect(said).to_contain_text("Bo judged row 1 Fail")
        assert [entry[3] for entry in _history(server.data_dir, ids["shared"])] == [False, False]
        _click(bo, "review-undo")  # Bo's own undo takes back his, and only his
        _expect_row(bo, "Row 1")
        assert _history(server.data_dir, ids["shared"]) == [
            (1, "Ana", "pass", False),
            (1, "Bo", "fail", True),
        ]
        assert_no_exception(ana)
        assert_no_exception(bo)
    finally:
        ana.context.close()
        bo.context.close()


def test_the_reviewers_name_survives_a_refresh(
    browser: Browser, review_server: tuple[AppServer, dict]
) -> None:
    server, ids = review_server
    page = _reviewer_context(browser, server)
    try:
        _open_review(page, ids["refresh"])
        _sign(page, "QA Mei")
        page.reload()  # lands on the Results view: its cards give verdicts in her name too
        wait_for_app(page, timeout=120)
        second = _row_ids(server.data_dir, ids["refresh"])[1]
        _click(page, f"batch-card-pass-{second}")
        # The card's badges: its state, then its verdict in the one word for it ("Pass").
        expect(keyed(page, f"batch-card-{second}")).to_contain_text(
            re.compile(r"Done\s*check\s*Pass\s*Row 2")
        )
        assert _history(server.data_dir, ids["refresh"]) == [(2, "QA Mei", "pass", False)]
        page.get_by_role("button", name="Review & reports").or_(
            page.get_by_text("Review & reports", exact=True)
        ).first.click()
        wait_for_app(page)
        expect(keyed(page, "reviewer").locator("input")).to_have_value("QA Mei")
        _click(page, "review-pass")
        expect(page.get_by_text("Every result in this view is reviewed.")).to_be_visible()
        assert _history(server.data_dir, ids["refresh"]) == [
            (2, "QA Mei", "pass", False),
            (1, "QA Mei", "pass", False),
        ]
        keyed(page, "batch-view").get_by_text("Results").click()  # the field is not drawn there
        wait_for_app(page)
        expect(keyed(page, f"batch-card-{second}")).to_be_visible()
        assert re.search(r"[?&]reviewer=QA", page.url), page.url  # still in the address
    finally:
        page.context.close()


def _row_ids(data_dir: Path, batch_id: int) -> list[int]:
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    try:
        return [
            job.id for job in sorted(ledger.jobs(batch_id=batch_id), key=lambda job: job.row_index)
        ]
    finally:
        ledger.close()


def _result_top(page: Page) -> float:
    """Where the top of the result under review is, in CSS pixels from the viewport's top."""
    image = (
        page.locator("[data-testid='stImage']")
        .filter(has=page.get_by_text("Result", exact=True))
        .locator("img")
        .first
    )
    expect(image).to_be_visible()
    loaded = "img => img.complete && img.naturalWidth > 0"
    page.wait_for_function(loaded, arg=image.element_handle())
    box = image.bounding_box()
    assert box is not None
    return box["y"]


def test_the_result_under_review_is_above_the_fold(
    browser: Browser, review_server: tuple[AppServer, dict]
) -> None:
    server, ids = review_server
    page = _reviewer_context(browser, server)
    try:
        _open_review(page, ids["layout"])
        top = _result_top(page)
        print(f"result image top at 1440x900: {top:.0f} px")
        assert top < 900 - 200, f"the result starts at {top:.0f} px: below the fold"
        expect(keyed(page, "review-pass")).to_be_in_viewport()
        screenshot(page, "review-1440x900")
        page.set_viewport_size({"width": 390, "height": 844})
        wait_for_app(page)
        phone = _result_top(page)
        print(f"result image top at 390x844: {phone:.0f} px")
        assert phone < 844, f"on a phone the result starts at {phone:.0f} px"
        screenshot(page, "review-390x844")
    finally:
        page.context.close()
