"""The next results' pictures are in the browser before a key shows them, in real headless
Chromium: in Review, the result P brings up was already loaded (drawn hidden) when P was
pressed; in the gallery's detail dialog, the one Next brings up too. And a verdict given in
another session shows once this one looks again (the rows are read again when the batch
changed)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_app import AppServer, start_app, stop_app
from browser_helpers import keyed, wait_for_app
from playwright.sync_api import Browser, Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from review_data import completed, finished_batch, grid_pairs  # noqa: E402

from mirrago import review  # noqa: E402
from mirrago.ledger import Ledger  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def seeded_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppServer, int]]:
    workdir = tmp_path_factory.mktemp("preload-app")
    data_dir = workdir / "data"
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    try:
        batch_id = finished_batch(ledger, data_dir, grid_pairs(2, 4), name="Preload").id
    finally:
        ledger.close()
    server = start_app(workdir)
    yield server, batch_id
    stop_app(server)


@pytest.fixture
def page(browser: Browser, seeded_app: tuple[AppServer, int]) -> Iterator[Page]:
    server, _ = seeded_app
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=server.url)
    context.set_default_timeout(90_000)
    yield context.new_page()
    context.close()


def _sources(page: Page, selector: str) -> list[str]:
    return page.locator(f"{selector} img").evaluate_all("images => images.map(i => i.src)")


def _open_review(page: Page, batch_id: int) -> None:
    page.goto(f"/batch?batch={batch_id}")
    wait_for_app(page, timeout=120)
    page.get_by_text("Review & reports", exact=True).first.click()
    wait_for_app(page)
    expect(keyed(page, "review-title")).to_contain_text("Row")


def test_the_result_a_verdict_brings_up_was_already_loaded(
    page: Page, seeded_app: tuple[AppServer, int]
) -> None:
    _, batch_id = seeded_app
    _open_review(page, batch_id)
    expect(page.locator(".st-key-review-preload img")).to_have_count(2)
    hidden = _sources(page, ".st-key-review-preload")
    # loaded before the key is pressed (a reviewer looks at a result for a second or more; a
    # busy CI machine may take a moment to fetch them: a deadline, not a duration)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.st-key-review-preload img'))"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=45_000,
    )
    before = keyed(page, "review-title").inner_text().split("·")[0].strip()
    page.keyboard.press("p")
    expect(keyed(page, "review-title")).not_to_contain_text(before + " ")
    wait_for_app(page)
    [shown] = _sources(page, ".st-key-review-result")
    assert shown == hidden[0]


def test_the_result_next_brings_up_in_the_dialog_was_already_loaded(
    page: Page, seeded_app: tuple[AppServer, int]
) -> None:
    _, batch_id = seeded_app
    page.goto(f"/batch?batch={batch_id}")
    wait_for_app(page, timeout=120)
    page.locator("[class*='st-key-batch-open-'] button").first.click()
    wait_for_app(page)
    nav = keyed(page, "batch-detail-nav")
    expect(nav).to_contain_text("1 of 8")
    hidden = _sources(page, ".st-key-batch-detail-preload")
    assert len(hidden) == 1  # the first result: Next only
    keyed(page, "batch-detail-next").locator("button").click()
    expect(nav).to_contain_text("2 of 8")
    wait_for_app(page)
    shown = _sources(page, "[data-testid='stDialog'] [data-testid='stImageContainer']")
    assert hidden[0] in shown


def test_a_verdict_from_another_session_shows_at_the_next_look(
    page: Page, seeded_app: tuple[AppServer, int]
) -> None:
    server, batch_id = seeded_app
    _open_review(page, batch_id)
    failed = page.locator(".st-key-review-summary [data-testid='stMetric']").filter(
        has_text="Failed"
    )
    expect(failed).to_contain_text("0")
    ledger = Ledger(f"sqlite:///{server.data_dir / 'ledger.sqlite3'}")
    try:
        rows = completed(ledger, batch_id)
        last = max(rows, key=lambda row: row.row_index)
        review.give_verdict(ledger, last, review.FAIL, ["artifacts"], reviewer="QA Ben")
    finally:
        ledger.close()
    page.keyboard.press("s")  # Skip: a look at the batch again, in this session
    wait_for_app(page)
    failed = page.locator(".st-key-review-summary [data-testid='stMetric']").filter(
        has_text="Failed"
    )
    expect(failed).to_contain_text("1")
