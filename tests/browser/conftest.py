"""Real-browser fixtures: the app (see browser_app.py) and Debian's Chromium through Playwright.

A missing browser is a failure, never a skip: the test command installs Chromium.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_app import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    AppServer,
    log_tails,
    start_app,
    stop_app,
)
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

# Deadlines, not durations: a passing test never waits them out, and a machine busy with other
# work (CI on 2 cores, a suite run beside two busy loops) must not fail a correct page.
PATIENCE_MS = 90_000
expect.set_options(timeout=45_000)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """A failing browser test carries the end of each running app server's log."""
    report = yield
    if report.failed:
        report.sections.append(("app server logs", log_tails()))
    return report


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """One app server for the browser tests: on the embedded sandbox, empty data dir."""
    server = start_app(tmp_path_factory.mktemp("app"))
    yield server
    stop_app(server)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(server.log_path, ARTIFACTS / "streamlit.log")


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


def _camera_file(folder: Path) -> Path:
    """What the fake camera films: a shipped person photo at 2400×3200, as a one-frame MJPEG.

    Chromium's built-in fake camera picks its frame size by itself, smaller on a busy machine,
    so a photo taken with it has no size a test can expect; a file has exactly one."""
    sample = Path(__file__).parents[2] / "mirrago" / "samples" / "persons" / "studio-ana.jpg"
    with Image.open(sample) as photo:
        frame = photo.convert("RGB").resize((2400, 3200), Image.Resampling.BILINEAR)
    path = folder / "camera.mjpeg"
    frame.save(path, format="JPEG", quality=85)
    return path


@pytest.fixture(scope="session")
def browser(
    playwright_instance: Playwright, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (scripts/bootstrap.sh does), "
            "the browser tests cannot run without it."
        )
    browser = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            *CHROMIUM_ARGS,
            f"--use-file-for-fake-video-capture={_camera_file(tmp_path_factory.mktemp('camera'))}",
        ],
        headless=True,
    )
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, app_server: AppServer) -> Iterator[BrowserContext]:
    context = browser.new_context(
        viewport=VIEWPORT, permissions=["camera"], base_url=app_server.url
    )
    context.set_default_timeout(PATIENCE_MS)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    yield page
    page.close()
