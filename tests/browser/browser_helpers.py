"""Small Playwright helpers for Streamlit pages: wait for a run to finish, find widgets by key,
take full-page screenshots."""

from __future__ import annotations

import re
import time
from pathlib import Path

import sqlalchemy as sa
from browser_app import ARTIFACTS
from PIL import Image
from playwright.sync_api import Download, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from mirrago.ledger import JobInput, Ledger, batches, jobs, utcnow


def wait_for_app(page: Page, timeout: float = 90.0) -> None:
    """Until the app is connected, its script has finished its run, and nothing on the page
    is stale or still a loading skeleton."""
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-connection-state='CONNECTED']"
        "[data-test-script-state='notRunning']",
        timeout=timeout * 1000,
    )
    deadline = time.monotonic() + timeout
    busy = "[data-stale='true'], [data-testid='stMain'] [data-testid='stSkeleton']"
    while page.locator(busy).count() and time.monotonic() < deadline:
        time.sleep(0.1)


def open_app(page: Page, path: str = "/") -> None:
    page.goto(path)
    page.wait_for_selector("[data-testid='stMain'] [data-testid='stHeading']")
    wait_for_app(page)


def keyed(page: Page, key: str) -> Locator:
    """The element (widget or container) created with `key=`."""
    return page.locator(f".st-key-{key}")


def download(page: Page, button: Locator, timeout: float = 90.0) -> Download:
    """Click a download button and return the download: a deadline, not a duration. The
    button's data may be built on the click (a server run), and a click that lands while a
    busy page redraws can be lost, so it is clicked once more if nothing came in half the time."""
    expect(button).to_be_enabled(timeout=timeout * 1000)
    try:
        with page.expect_download(timeout=timeout * 500) as info:
            button.click()
        return info.value
    except PlaywrightTimeout:
        wait_for_app(page, timeout / 2)
    with page.expect_download(timeout=timeout * 500) as info:
        button.click()
    return info.value


def connect_live(
    page: Page, base_url: str, client_id: str, secret: str, timeout: float = 90.0
) -> None:
    """Connect this browser session to a live endpoint with the sidebar's form and wait for
    "this session now uses it": a deadline. A submit that lands while a busy page redraws can
    be lost (no answer at all), so the form is filled and sent once more after half the time."""
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("Connect to a live endpoint").click()

    def submit() -> None:
        keyed(page, "connect-base-url").locator("input").fill(base_url)
        keyed(page, "connect-client-id").locator("input").fill(client_id)
        keyed(page, "connect-secret").locator("input").fill(secret)
        sidebar.get_by_role("button", name=re.compile("Test connection")).click()
        wait_for_app(page, timeout / 2)

    submit()
    try:
        expect(sidebar).to_contain_text("this session now uses it", timeout=timeout * 500)
    except AssertionError:
        submit()
        expect(sidebar).to_contain_text("this session now uses it", timeout=timeout * 500)


def assert_no_exception(page: Page) -> None:
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "Traceback" not in body
    assert "Page not found" not in page.content()


def _main_height(page: Page) -> int:
    return page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot in test-artifacts/ (Streamlit scrolls inside stMain)."""
    ARTIFACTS.mkdir(exist_ok=True)
    wait_for_app(page)
    height, deadline = -1, time.monotonic() + 5
    while time.monotonic() < deadline:  # expanders animate: wait for the height to settle
        current = _main_height(page)
        if current == height:
            break
        height = current
        time.sleep(0.3)
    size = page.viewport_size or {"width": 1440, "height": 900}
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    wait_for_app(page)
    page.wait_for_function("() => Array.from(document.images).every(image => image.complete)")
    path = ARTIFACTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def seed_finished_batch(data_dir: Path, inputs: list[JobInput], name: str) -> int:
    """A finished batch of completed rows for `inputs` in the app's ledger, sharing one
    thumbnail; its id."""
    thumbs = data_dir / "thumbs"
    thumbs.mkdir(parents=True, exist_ok=True)
    thumb = thumbs / "seed.jpg"
    Image.new("RGB", (240, 320), (120, 90, 200)).save(thumb, "JPEG")
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    try:
        # Private while seeding, so the app's runner never claims a row of it.
        batch = ledger.create_batch(name, "batch-page", inputs, backend="test:seeded", private=True)
        now = utcnow()
        with ledger._write() as conn:  # noqa: SLF001 - seeding finished rows in one statement
            conn.execute(
                jobs.update()
                .where(jobs.c.batch_id == batch.id)
                .values(
                    state="completed",
                    job_id="seed-" + jobs.c.id.cast(sa.Text),
                    submitted_at=now,
                    finished_at=now,
                    thumbnail_path=str(thumb),
                    result_path=str(thumb),
                )
            )
            conn.execute(batches.update().where(batches.c.id == batch.id).values(private=False))
        return batch.id
    finally:
        ledger.close()
