"""The Batch page in a real browser: on the embedded sandbox (the shared app server) and on a
sandbox configured as a live endpoint (this module's server): import with a bad row, sample
rows, Combine, a refresh mid-batch, the detail dialog, markup in a username, a 500-row batch,
a 10,000-row table, and where the Results view opens after Run."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser_app import ARTIFACTS, AppServer, start_app, stop_app
from browser_helpers import (
    assert_no_exception,
    keyed,
    open_app,
    screenshot,
    seed_finished_batch,
    wait_for_app,
)
from playwright.sync_api import Browser, Page, Route, expect

from mirrago.ledger import JobInput
from mirrago.samples import garments, persons
from mirrago.sandbox.server import EmbeddedSandbox, SandboxConfig, start_embedded

pytestmark = pytest.mark.browser

FINISH_TIMEOUT = 90_000  # ms, a deadline
MARKUP = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def live_sandbox() -> Iterator[EmbeddedSandbox]:
    """A sandbox slow enough to be caught mid-batch: 2–3 s a job, one at a time."""
    sandbox = start_embedded(SandboxConfig(latency=(2.0, 3.0), workers=1, seed=5))
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def live_app(
    live_sandbox: EmbeddedSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    """The app configured for that sandbox as a live endpoint (MIRRAGO_BASE_URL set)."""
    server = start_app(
        tmp_path_factory.mktemp("batch-live"),
        {
            "MIRRAGO_BASE_URL": live_sandbox.base_url,
            "MIRRAGO_CLIENT_ID": live_sandbox.client_id,
            "MIRRAGO_CLIENT_SECRET": live_sandbox.client_secret,
        },
    )
    yield server
    stop_app(server)


@pytest.fixture
def live_page(browser: Browser, live_app: AppServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_app.url)
    context.set_default_timeout(90_000)  # a deadline, as in conftest.py
    page = context.new_page()
    yield page
    context.close()


def click(page: Page, key: str) -> None:
    keyed(page, key).get_by_role("button").first.click()
    wait_for_app(page)


def click_until(page: Page, key: str, done: Callable[[], None]) -> None:
    """Click, then wait for `done` (an `expect`): a click that lands while a busy page redraws
    can be lost (nothing changes in 45 s), so it is clicked once more."""
    for attempt in range(2):
        click(page, key)
        try:
            done()
            return
        except AssertionError:
            if attempt:
                raise


def snap(page: Page, name: str) -> None:
    """A full-page screenshot while the page ticks (`screenshot` waits for a quiet page)."""
    ARTIFACTS.mkdir(exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1440, "height": max(900, height)})
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})


def cards(page: Page):
    """The result cards (each has one Open button)."""
    return page.locator("[class*='st-key-batch-open-']")


def expect_finished(page: Page, count: int) -> None:
    expect(keyed(page, "batch-header")).to_contain_text("Finished", timeout=FINISH_TIMEOUT)
    expect(page.locator("[class*='st-key-batch-open-']")).to_have_count(count)
    assert_no_exception(page)


def test_import_with_a_bad_row_runs_the_rest_and_survives_a_refresh(
    live_page: Page, live_sandbox: EmbeddedSandbox, tmp_path: Path
) -> None:
    page = live_page
    alerts: list[str] = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    base = f"{live_sandbox.base_url}/samples"
    csv = tmp_path / "pairs.csv"
    csv.write_text(
        "target_image_url,garment_image_url,username,notes\n"
        f"{base}/persons/studio-ana.jpg,{base}/garments/red-hoodie.png,{MARKUP},a\n"
        f"{base}/persons/studio-kofi.jpg,not-a-link,qa,b\n"
        f"{base}/persons/studio-mei.jpg,{base}/garments/denim-shirt.png,qa,c\n"
        f"{base}/persons/studio-sam.jpg,{base}/garments/floral-dress.png,qa,d\n"
        f"{base}/persons/astronaut.jpg,{base}/garments/green-sweater.png,qa,e\n"
    )
    before = live_sandbox.engine.stats()["jobs_created"]
    open_app(page, "/batch")
    click(page, "batch-add-samples")  # a live endpoint: samples are not reachable from it
    expect(page.get_by_text("Sample rows need public image links")).to_be_visible()
    keyed(page, "batch-import").locator("input[type=file]").set_input_files(str(csv))
    wait_for_app(page)
    expect(page.get_by_text("Imported 5 rows from pairs.csv")).to_be_visible()
    expect(page.get_by_text("Ignored column 'notes'")).to_be_visible()
    expect(
        page.get_by_text("Row 2: garment_image_url: a file path on the server is not accepted here")
    ).to_be_visible()
    run = keyed(page, "batch-run").get_by_role("button")
    expect(run).to_have_text(re.compile("Run batch — 4 credits"))
    screenshot(page, "batch-table")
    run.click()  # no wait_for_app from here: a running batch keeps the page ticking

    header = keyed(page, "batch-header")
    expect(header).to_contain_text("Running", timeout=FINISH_TIMEOUT)
    name = header.locator("h3").inner_text()
    expect(keyed(page, "batch-grid").get_by_text("Done").first).to_be_visible(
        timeout=FINISH_TIMEOUT
    )
    snap(page, "batch-mid")  # one result in, three to come (a job at a time, 2–3 s each)
    page.reload()  # the runner works on; the page rebuilds from the ledger
    expect(keyed(page, "batch-header").locator("h3")).to_have_text(name)
    expect_finished(page, 4)
    assert live_sandbox.engine.stats()["jobs_created"] - before == 4  # the bad row never sent
    first = keyed(page, f"batch-card-{_first_card_id(page)}")
    expect(first).to_contain_text(MARKUP)  # shown as text, not an image tag
    assert page.locator("[data-testid='stMain'] img[src='x']").count() == 0
    screenshot(page, "batch-finished")
    assert alerts == []


def _first_card_id(page: Page) -> str:
    name = page.locator("[class*='st-key-batch-open-']").first.get_attribute("class") or ""
    return re.search(r"st-key-batch-open-(\d+)", name).group(1)  # type: ignore[union-attr]


def test_combine_then_sample_rows_run_and_the_detail_view_steps_to_the_next(page: Page) -> None:
    open_app(page, "/batch")
    keyed(page, "batch-view").get_by_role("radio", name=re.compile("New batch")).click()
    wait_for_app(page)
    keyed(page, "batch-combine").get_by_role("button").first.click()
    for role, count in (("person", 3), ("garment", 4)):  # two pasted lists of links
        area = keyed(page, f"batch-combine-{role}-urls").locator("textarea")
        area.fill("\n".join(f"https://example.com/{role}-{i}.jpg" for i in range(count)))
        area.press("Control+Enter")
        wait_for_app(page)
    add = keyed(page, "batch-combine-add").get_by_role("button")
    expect(add).to_have_text(re.compile("3 × 4 = 12 rows"))
    add.click()
    wait_for_app(page)
    expect(page.get_by_text("Added 12 rows (3 persons × 4 garments)")).to_be_visible()
    expect(keyed(page, "batch-run").get_by_role("button")).to_have_text(
        re.compile("Run batch — 12 credits")
    )
    run = keyed(page, "batch-run").get_by_role("button")
    click_until(page, "batch-clear", lambda: expect(run).not_to_have_text(re.compile("12 credits")))
    click_until(
        page, "batch-add-samples", lambda: expect(run).to_have_text(re.compile("4 credits"))
    )
    keyed(page, "batch-run").get_by_role("button").click()
    expect_finished(page, 4)

    page.locator("[class*='st-key-batch-open-'] button").first.click()
    dialog = page.locator("[data-testid='stDialog']")
    expect(dialog).to_contain_text("1 of 4")
    expect(dialog.locator("[data-testid='stImage'] img").first).to_be_visible()
    page.wait_for_function("() => Array.from(document.images).every(image => image.complete)")
    page.screenshot(path=str(ARTIFACTS / "batch-detail.png"))
    dialog.get_by_role("button", name=re.compile("Next")).click()
    expect(dialog).to_contain_text("2 of 4")
    expect(dialog).to_contain_text("Row 2")
    assert_no_exception(page)


def seed_rows(data_dir: Path, rows: int) -> int:
    """A finished batch of `rows` completed rows of the shipped samples (local files: nothing
    for the browser to fetch)."""
    people, clothes = persons(), garments()
    inputs = [
        JobInput(str(people[i % len(people)].path), str(clothes[i % len(clothes)].path))
        for i in range(rows)
    ]
    return seed_finished_batch(data_dir, inputs, "Five hundred")


def test_a_500_row_finished_batch_opens_paged(live_page: Page, live_app: AppServer) -> None:
    batch_id = seed_rows(live_app.data_dir, 500)
    open_app(live_page, f"/batch?batch={batch_id}")
    expect(keyed(live_page, "batch-header")).to_contain_text("Five hundred")
    expect(live_page.get_by_text("Showing 1–12 of 500")).to_be_visible()
    expect(keyed(live_page, "batch-gallery-page")).to_be_visible()
    expect(live_page.locator("[class*='st-key-batch-open-']")).to_have_count(12)
    sizes = live_page.evaluate(
        "() => Array.from(document.querySelectorAll('[class*=st-key-batch-card-] img'))"
        ".map(image => image.src.length)"
    )
    assert sizes and max(sizes) * 3 / 4 <= 64 * 1024
    # page 5 shows results 49-60; 24 per page keeps result 49 on screen: page 3, 49-72
    keyed(live_page, "batch-gallery-page").get_by_role("button", name="Page 5", exact=True).click()
    expect(live_page.get_by_text("Showing 49–60 of 500")).to_be_visible()
    per_page = keyed(live_page, "batch-gallery-per-page")
    per_page.get_by_role("radio", name="24", exact=True).click()
    expect(live_page.get_by_text("Showing 49–72 of 500")).to_be_visible()
    expect(live_page.locator("[class*='st-key-batch-open-']")).to_have_count(24)
    assert_no_exception(live_page)


def _main_scroll(page: Page) -> int:
    return page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollTop")


def test_after_run_the_results_open_at_the_top(page: Page) -> None:
    page.set_viewport_size({"width": 1440, "height": 600})
    open_app(page, "/batch")
    keyed(page, "batch-view").get_by_role("radio", name=re.compile("New batch")).click()
    wait_for_app(page)
    click(page, "batch-add-samples")
    click(page, "batch-add-samples")
    run = keyed(page, "batch-run").get_by_role("button")
    run.scroll_into_view_if_needed()
    page.evaluate(
        "() => { const main = document.querySelector('[data-testid=\"stMain\"]');"
        " main.scrollTop = main.scrollHeight; }"
    )
    assert _main_scroll(page) > 100  # the user is at the bottom, where Run is
    run.click()
    header = keyed(page, "batch-header")
    expect(header).to_contain_text(re.compile("Running|Finished"), timeout=FINISH_TIMEOUT)
    expect(keyed(page, "batch-grid")).to_be_visible()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stMain\"]').scrollTop === 0", timeout=10_000
    )
    box = header.bounding_box()
    assert box is not None and 0 <= box["y"] < 600  # progress in view, not mid-gallery
    assert_no_exception(page)


def _record_outside_requests(page: Page) -> list[str]:
    """Every request the page makes to anything but the app itself (aborted)."""
    outside: list[str] = []

    def route(route: Route) -> None:
        host = re.match(r"^[a-z]+://([^/:]+)", route.request.url)
        if host and host.group(1) not in ("127.0.0.1", "localhost"):
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", route)
    return outside


def test_a_10000_row_import_is_paged_and_a_larger_one_refused(page: Page, tmp_path: Path) -> None:
    outside = _record_outside_requests(page)
    header = "target_image_url,garment_image_url,username\n"
    rows = [
        f"https://img{i % 7}.invalid/p{i}.jpg,https://img.invalid/g{i % 50}.png,qa"
        for i in range(10_001)
    ]
    big, bigger = tmp_path / "ten-thousand.csv", tmp_path / "one-more.csv"
    big.write_text(header + "\n".join(rows[:10_000]) + "\n")
    bigger.write_text(header + "\n".join(rows) + "\n")
    open_app(page, "/batch")
    keyed(page, "batch-view").get_by_role("radio", name=re.compile("New batch")).click()
    wait_for_app(page)
    keyed(page, "batch-import").locator("input[type=file]").set_input_files(str(big))
    wait_for_app(page)
    expect(page.get_by_text("Imported 10,000 rows from ten-thousand.csv.")).to_be_visible()
    expect(page.get_by_text("Rows 1–500 of 10,000")).to_be_visible()
    expect(keyed(page, "batch-table-page")).to_be_visible()
    # One table: the editor of the table before the import leaves once the page has redrawn
    # (while it redraws, the old one may still be there, hidden: wait for the page, then count).
    wait_for_app(page)
    expect(page.locator("[data-testid='stDataFrame'] >> visible=true")).to_have_count(1)
    expect(page.locator("[data-testid='stDataFrame']")).to_have_count(1)
    expect(keyed(page, "batch-run").get_by_role("button")).to_have_text(
        re.compile("Run batch — 10,000 credits")
    )
    assert "MessageSizeError" not in page.content()
    assert_no_exception(page)
    screenshot(page, "batch-table-10000")
    open_app(page, "/batch")  # a new session: an empty table
    keyed(page, "batch-view").get_by_role("radio", name=re.compile("New batch")).click()
    wait_for_app(page)
    keyed(page, "batch-import").locator("input[type=file]").set_input_files(str(bigger))
    wait_for_app(page)
    expect(
        page.get_by_text(
            re.compile("Nothing imported from one-more.csv: the file has more than 10,000 rows")
        )
    ).to_be_visible()
    expect(keyed(page, "batch-run").get_by_role("button")).to_be_disabled()
    screenshot(page, "batch-table-refused")
    assert [url for url in outside if ".invalid/" in url] == []  # no link fetched for a preview
