"""In a real browser: one job per intent, every width, one truth on screen, HEIC.

Reuses the session's app server (tests/browser/conftest.py); each test makes its try-ons
unique with its own username, and reads the app's ledger file to count what was created.
"""

from __future__ import annotations

import io
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_app import AppServer, start_app, stop_app
from browser_helpers import (
    assert_no_exception,
    connect_live,
    keyed,
    open_app,
    screenshot,
    wait_for_app,
)
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect
from support import eventually

from mirrago.backend import Backend
from mirrago.ledger import JobInput, Ledger
from mirrago.sandbox.engine import SandboxConfig

pytestmark = pytest.mark.browser

RESULT_TIMEOUT = 90_000  # ms: deadlines, not durations (a busy machine must not fail a page)
WIDTHS = {390: 844, 1024: 768, 1280: 800, 1440: 900}


def _rows(server: AppServer, username: str) -> list[tuple[int, str]]:
    with sqlite3.connect(server.data_dir / "ledger.sqlite3") as conn:
        return conn.execute(
            "SELECT id, state FROM jobs WHERE username = ? ORDER BY id", (username,)
        ).fetchall()


def _username(page: Page, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    field = keyed(page, "tryon-username").locator("input")
    field.fill(name)
    field.press("Enter")
    wait_for_app(page)
    return name


def _expect_result(page: Page) -> None:
    result = keyed(page, "tryon-result")
    expect(result.get_by_role("button", name=re.compile("Download the result"))).to_be_visible(
        timeout=RESULT_TIMEOUT
    )
    assert_no_exception(page)


@pytest.fixture(scope="module")
def slow_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """An app whose embedded sandbox takes 12 s a job: a try-on is certain to be still running
    while the clicks below arrive, however busy the machine is."""
    server = start_app(tmp_path_factory.mktemp("slow-app"), {"MIRRAGO_SANDBOX_LATENCY": "12"})
    yield server
    stop_app(server)


def test_rapid_clicks_on_generate_make_one_job(browser: Browser, slow_app: AppServer):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=slow_app.url)
    context.set_default_timeout(90_000)
    try:
        page = context.new_page()
        open_app(page, "/try-on")
        name = _username(page, "rapid")
        button = keyed(page, "tryon-generate").get_by_role("button")
        expect(button).to_be_enabled()
        box = button.bounding_box()
        assert box is not None
        for _ in range(6):  # as an impatient user: six clicks 600 ms apart on the same spot
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_timeout(600)
        wait_for_app(page)
        _expect_result(page)
        assert len(_rows(slow_app, name)) == 1
        # A deliberate second run of the same pair is possible once the first ended.
        generate = keyed(page, "tryon-generate").get_by_role("button")
        expect(generate).to_have_text(re.compile("Generate try-on"))
        generate.click()
        wait_for_app(page)
        again = page.get_by_role("button", name=re.compile("Already running|Generate"))
        expect(again).to_be_visible()
        # the click's run may start after the wait above
        eventually(lambda: len(_rows(slow_app, name)) >= 2, "the second run's row", 60)
        assert len(_rows(slow_app, name)) == 2
    finally:
        context.close()


def test_a_second_tab_sees_a_try_on_finish_by_itself(
    context: BrowserContext, app_server: AppServer
):
    # The row is made by the test, in a private batch that the app's runner leaves alone, so
    # the test decides when it finishes: no race with the sandbox.
    ledger = Ledger(f"sqlite:///{app_server.data_dir / 'ledger.sqlite3'}")
    try:
        person = str(Path(__file__).resolve().parents[2] / "mirrago/samples/persons/astronaut.jpg")
        sandbox = Backend("http://127.0.0.1:1", SandboxConfig().client_id, "-", is_sandbox=True)
        batch = ledger.create_batch(
            "Try-on",
            "try-on",
            [JobInput(person, person, username="second-tab")],
            backend=sandbox.key,
            private=True,
        )
        (row,) = ledger.jobs(batch_id=batch.id)
        page = context.new_page()
        open_app(page, "/try-on")
        card = keyed(page, f"tryon-recent-{row.id}")
        expect(card).to_contain_text("Waiting")
        with ledger._write() as conn:  # noqa: SLF001 - finish it as the runner would
            conn.exec_driver_sql(
                "UPDATE jobs SET state='completed', finished_at=created_at, result_path=? "
                "WHERE id=?",
                (person, row.id),
            )
        expect(card).to_contain_text("Done", timeout=45_000)  # no click, no reload
        assert_no_exception(page)
    finally:
        ledger.close()


def _heic_photo(path: Path) -> Path:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    image = Image.new("RGB", (640, 960), (150, 110, 90))
    image.paste((230, 200, 170), (200, 100, 440, 400))
    buffer = io.BytesIO()
    image.save(buffer, format="HEIF")
    path.write_bytes(buffer.getvalue())
    return path


def test_an_iphone_heic_photo_gives_a_result_and_a_refresh_keeps_its_previews(
    page: Page, tmp_path: Path
):
    open_app(page, "/try-on")
    keyed(page, "tryon-person-source").get_by_role("radio", name="Upload", exact=True).click()
    wait_for_app(page)
    upload = keyed(page, "tryon-person-upload")
    upload.locator("input[type=file]").set_input_files(_heic_photo(tmp_path / "IMG_0001.HEIC"))
    wait_for_app(page)
    expect(upload).not_to_contain_text("not an image")
    _username(page, "heic")
    keyed(page, "tryon-generate").get_by_role("button").click()
    wait_for_app(page)
    expect(page).to_have_url(re.compile(r"[?&]job=\d+"))  # the query string follows the run
    # A refresh (mid-job or after): the previews show this job's own inputs, not the defaults.
    page.reload()
    wait_for_app(page)
    expect(keyed(page, "tryon-person-preview")).to_contain_text("Your photo · used by this try-on")
    expect(keyed(page, "tryon-garment-preview")).to_contain_text("used by this try-on")
    _expect_result(page)


# Every choice a user can click: the source switches, the sample pills, the clickable
# thumbnails, the background switch. Its centre must hit the choice itself (nothing on top,
# not cut off) and lie inside the element that scrolls or clips it.
_CLIPPED_CHOICES = """
() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const choices = main.querySelectorAll(
    '[data-testid="stButtonGroup"] button, [class*="-thumb-"] .stButton button');
  const problems = [];
  for (const choice of choices) {
    // Scroll the page only vertically: a row that scrolls sideways to show a choice counts
    // as clipping it.
    const before = choice.getBoundingClientRect();
    main.scrollTop += before.top - window.innerHeight / 2;
    const box = choice.getBoundingClientRect();
    const label = (choice.innerText || choice.getAttribute('aria-label') || '?').trim();
    if (box.width < 8 || box.height < 8) { problems.push(label + ': no size'); continue; }
    const x = box.left + box.width / 2, y = box.top + box.height / 2;
    const hit = document.elementFromPoint(x, y);
    if (!hit || !(choice === hit || choice.contains(hit))) {
      const what = hit ? hit.className || hit.tagName : 'nothing';
      problems.push(label + ': centre covered by ' + what);
    }
    for (let box2 = choice.parentElement; box2 && box2 !== main; box2 = box2.parentElement) {
      const style = getComputedStyle(box2);
      if (/(auto|scroll|hidden|clip)/.test(style.overflowX + style.overflowY)) {
        const outer = box2.getBoundingClientRect();
        if (box.left < outer.left - 1 || box.right > outer.right + 1 ||
            box.top < outer.top - 1 || box.bottom > outer.bottom + 1) {
          problems.push(label + ': outside its container');
        }
        if (box2.scrollLeft > 0) problems.push(label + ': its row is scrolled sideways');
        break;
      }
    }
    const text = choice.querySelector('p');
    if (text && text.scrollWidth > text.clientWidth + 1) problems.push(label + ': text cut');
  }
  return {count: choices.length, problems};
}
"""


def _check_choices(page: Page, width: int) -> None:
    """Every choice whole once the layout has settled: a busy browser can measure a page
    mid-layout (thumbnails without a size yet, a caption over them), so it is measured again
    until it is right, up to a deadline; clipping that stays fails."""
    deadline = time.monotonic() + 30
    while True:
        wait_for_app(page)
        found = page.evaluate(_CLIPPED_CHOICES)
        if not found["problems"] or time.monotonic() > deadline:
            break
        page.wait_for_timeout(500)
    assert found["count"] >= 12 + 12 + 4 + 3, found  # thumbnails, pills, sources, backgrounds
    assert found["problems"] == [], f"{width} px: {found['problems']}"


def _at_width(browser: Browser, server: AppServer, width: int) -> tuple[BrowserContext, Page]:
    context = browser.new_context(
        viewport={"width": width, "height": WIDTHS[width]},
        base_url=server.url,
        is_mobile=width < 500,
        has_touch=width < 500,
    )
    context.set_default_timeout(90_000)
    return context, context.new_page()


def test_every_choice_is_whole_at_every_width_before_and_after_a_generation(
    browser: Browser, app_server: AppServer
):
    for width in WIDTHS:
        context, page = _at_width(browser, app_server, width)
        try:
            open_app(page, "/try-on")
            _check_choices(page, width)
            if width < 500:  # a phone: Generate within three screens of the top
                top = page.evaluate(
                    "() => document.querySelector('.st-key-tryon-generate')"
                    ".getBoundingClientRect().top + document.querySelector("
                    "'[data-testid=\"stMain\"]').scrollTop"
                )
                screens = top / WIDTHS[width]
                assert screens < 3, f"Generate is {screens:.1f} screens down"
                # A thumbnail is clickable: the second person sample becomes the pick.
                thumbs = page.locator(".st-key-tryon-person-thumbs .stButton button")
                thumbs.nth(1).click()
                wait_for_app(page)
                expect(keyed(page, "tryon-person-preview")).to_contain_text("Grace Hopper")
            screenshot(page, f"try-on-at-{width}-choices")
            if width < 500:  # one generation, on the phone; every width then shows its result
                _username(page, "widths")
                keyed(page, "tryon-generate").get_by_role("button").click()
                wait_for_app(page)
                _expect_result(page)
                job_url = page.url
        finally:
            context.close()
    for width in WIDTHS:
        context, page = _at_width(browser, app_server, width)
        try:
            open_app(page, job_url)
            _expect_result(page)
            _check_choices(page, width)
            cards = page.locator("[class*='st-key-tryon-recent-']")
            assert cards.first.bounding_box()["width"] >= 120  # recent cards readable
            screenshot(page, f"try-on-at-{width}-result")
        finally:
            context.close()


def test_a_live_connections_try_on_survives_a_refresh(page: Page):
    from mirrago.sandbox.server import SandboxConfig, embedded

    with embedded(SandboxConfig(latency=1.0)) as live:
        open_app(page, "/try-on")
        connect_live(page, live.base_url, live.client_id, live.client_secret)
        _username(page, "live-refresh")
        keyed(page, "tryon-generate").get_by_role("button").click()
        wait_for_app(page)
        expect(page).to_have_url(re.compile(r"[?&]job=\d+%40|[?&]job=\d+@"))
        page.reload()  # ends the session and its connection; the server's runner goes on
        wait_for_app(page)
        expect(page.get_by_text("Connect again to start new try-ons")).to_be_visible()
        _expect_result(page)
        assert live.client_secret not in page.content()
