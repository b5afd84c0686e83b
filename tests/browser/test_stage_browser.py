"""In a real browser: Stage's decks presented full-screen and steered from the keyboard, the
slideshow file offline, the privacy delete, and a visitor's live try-on that leaves nothing.

Decks are seeded in the app's ledger file with try-ons as the runner leaves them (their files
in the data dir); "Add to deck" itself is driven on the Try-on page.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser_app import AppServer, start_app, stop_app
from browser_helpers import (
    assert_no_exception,
    download,
    keyed,
    open_app,
    seed_finished_batch,
    wait_for_app,
)
from playwright.sync_api import Browser, BrowserContext, Frame, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support import eventually, stored_try_on  # noqa: E402

from mirrago import batchprogress  # noqa: E402
from mirrago.ledger import JobInput, JobRecord, Ledger, Origin  # noqa: E402
from mirrago.samples import garments, persons  # noqa: E402
from mirrago.sandbox.server import SandboxConfig, start_embedded  # noqa: E402

pytestmark = pytest.mark.browser

SIZES = [(1280, 720), (1920, 1080)]
SHOTS = Path("/work/wt/shots")
HOSTILE = "<img src=x onerror=alert(1)>"
FRAME = "iframe[title='Deck slideshow']"
PERSON_PHOTO = Path(__file__).parents[2] / "mirrago" / "samples" / "persons" / "studio-ana.jpg"


def _ledger(server: AppServer) -> Ledger:
    return Ledger(f"sqlite:///{server.data_dir / 'ledger.sqlite3'}")


def _seed_deck(
    server: AppServer, name: str, count: int = 3, notes: str = "Say: returns drop"
) -> tuple[int, list[JobRecord]]:
    """A deck of `count` slides: the first a Try-on result, the others from one batch."""
    ledger = _ledger(server)
    try:
        deck = ledger.create_deck(name)
        colours = [(200, 60, 60), (60, 170, 60), (60, 60, 200), (200, 160, 40)]
        made = []
        for index in range(count):
            tag = f"{name.lower().replace(' ', '-')}-{index}-{time.monotonic_ns()}"
            source = "try-on" if index == 0 else "batch-page"
            job = stored_try_on(ledger, server.data_dir, tag, source=source, colour=colours[index])
            ledger.add_slide(
                deck.id,
                job.id,
                person_path=job.target,
                garment_path=job.garment,
                person_label="Ana",
                garment_label=f"Garment {index + 1}",
                notes=notes if index == 0 else None,
            )
            made.append(job)
        return deck.id, made
    finally:
        ledger.close()


def _context(browser: Browser, server: AppServer, size: tuple[int, int]) -> BrowserContext:
    context = browser.new_context(
        viewport={"width": size[0], "height": size[1]}, base_url=server.url
    )
    context.set_default_timeout(90_000)
    return context


def _present(page: Page, deck_id: int) -> Frame:
    page.goto(f"/stage?deck={deck_id}")
    wait_for_app(page)
    page.wait_for_selector(FRAME)
    frame = page.frame_locator(FRAME)
    expect(frame.locator(".counter")).to_have_text(re.compile(r"\d+ / \d+"))
    handle = page.locator(FRAME).element_handle()
    assert handle is not None
    content = handle.content_frame()
    assert content is not None
    return content


def _counter(frame: Frame) -> str:
    return frame.locator(".counter").inner_text()


def _height(frame: Frame, selector: str) -> float:
    box = frame.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not on screen"
    return box["height"]


def _no_scrolling(page: Page) -> None:
    sizes = page.evaluate(
        """() => {
        const main = document.querySelector('[data-testid="stMain"]');
        return [document.scrollingElement.scrollHeight, window.innerHeight,
                document.scrollingElement.scrollWidth, window.innerWidth,
                main.scrollHeight, main.clientHeight];
    }"""
    )
    page_height, view_height, page_width, view_width, main_height, main_client = sizes
    assert page_height <= view_height and page_width <= view_width, sizes
    assert main_height <= main_client, sizes


def _choose(
    page: Page,
    select: Locator,
    option: str | re.Pattern[str],
    reopen: Callable[[], None] | None = None,
) -> None:
    """Pick `option` in a selectbox: a click that lands while a busy page redraws (a popover
    still opening) can be lost, so the list is opened again until the option shows; `reopen`
    opens the popover the selectbox is in again when a redraw closed it."""
    for _ in range(5):
        wait_for_app(page)
        if reopen is not None and not select.is_visible():
            reopen()
        try:
            select.click(timeout=15_000)
        except PlaywrightTimeout:
            continue
        choice = page.get_by_role("option", name=option)
        try:
            choice.wait_for(timeout=10_000)
        except PlaywrightTimeout:
            continue  # the next click on the selectbox opens its list again
        choice.click()
        wait_for_app(page)
        return
    raise AssertionError(f"the option {option!r} never showed")


def _shot(page: Page, name: str, *, full_page: bool = False) -> None:
    """A screenshot in /work/wt/shots; `full_page`: all of Streamlit's main area (it scrolls
    inside stMain, so the viewport grows to its height for the shot)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    if full_page and size is not None:
        height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
        page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
        wait_for_app(page)
    page.screenshot(path=str(SHOTS / f"stage-{name}.png"))
    if full_page and size is not None:
        page.set_viewport_size(size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_deck_plays_full_screen_and_follows_the_keys(
    browser: Browser, app_server: AppServer, size: tuple[int, int]
) -> None:
    deck_id, _ = _seed_deck(app_server, f"Pitch {size[0]}")
    context = _context(browser, app_server, size)
    try:
        page = context.new_page()
        frame = _present(page, deck_id)
        for chrome in ("stSidebar", "stHeader", "stToolbar", "stStatusWidget"):
            expect(page.locator(f"[data-testid='{chrome}']")).to_be_hidden()
        _no_scrolling(page)
        assert _counter(frame) == "1 / 3"
        assert _height(frame, ".slide.current .result img") >= size[1] / 2
        expect(frame.locator(".slide.current .garment img")).to_be_visible()
        _shot(page, f"present-{size[0]}x{size[1]}")
        page.keyboard.press("ArrowRight")
        expect(frame.locator(".counter")).to_have_text("2 / 3")
        page.keyboard.press("PageDown")
        expect(frame.locator(".counter")).to_have_text("3 / 3")
        page.keyboard.press("PageUp")
        page.keyboard.press("ArrowLeft")
        expect(frame.locator(".counter")).to_have_text("1 / 3")
        # Space: the original photo beside the result, both large; again: back.
        page.keyboard.press("Space")
        expect(frame.locator("body.compare")).to_have_count(1)
        assert _height(frame, ".slide.current .person-slot img") >= size[1] / 2
        expect(frame.locator(".slide.current .garment")).to_be_hidden()
        _shot(page, f"before-after-{size[0]}x{size[1]}")
        page.keyboard.press("Space")
        expect(frame.locator("body.compare")).to_have_count(0)
        notes = frame.locator(".slide.current .notes")
        expect(notes).to_be_hidden()
        page.keyboard.press("n")
        expect(notes).to_have_text("Say: returns drop")
        _shot(page, f"notes-{size[0]}x{size[1]}")
        page.keyboard.press("N")
        expect(notes).to_be_hidden()
        _no_scrolling(page)
        page.keyboard.press("Escape")
        expect(page.get_by_role("heading", name="Stage")).to_be_visible()
        assert "deck=" not in page.url
        wait_for_app(page)
        assert_no_exception(page)
        _shot(page, f"manager-{size[0]}x{size[1]}", full_page=True)
    finally:
        context.close()


def test_add_to_deck_on_a_try_on_result_makes_a_deck_on_the_spot(
    browser: Browser, app_server: AppServer
) -> None:
    ledger = _ledger(app_server)
    try:
        job = stored_try_on(ledger, app_server.data_dir, f"add-{time.monotonic_ns()}")
    finally:
        ledger.close()
    context = _context(browser, app_server, (1440, 900))
    try:
        page = context.new_page()
        open_app(page, f"/try-on?job={job.id}")
        _add_to_deck(
            page, keyed(page, "tryon-result"), "tryon", job.id, f"Booth {job.id}", new=True
        )
        assert_no_exception(page)
    finally:
        context.close()
    ledger = _ledger(app_server)
    try:
        (deck,) = [d for d in ledger.decks() if d.name == f"Booth {job.id}"]
        (slide,) = ledger.slides(deck.id)
        assert (slide.row_id, slide.result_path) == (job.id, job.result_path)
        assert slide.person_path == job.target and slide.garment_path == job.garment
    finally:
        ledger.close()


def _add_to_deck(
    page: Page, scope: Locator, key: str, job_id: int, deck: str, *, new: bool
) -> None:
    """Open the "Add to deck" popover of job `job_id` inside `scope` (its widgets' keys start
    with `key`), choose (or create) `deck`, add."""
    choice = keyed(page, f"{key}-deck-choice-{job_id}")

    def reopen() -> None:
        for _ in range(3):  # a click that lands while a busy page redraws can be lost
            wait_for_app(page)
            scope.get_by_role("button", name=re.compile("Add to deck")).click()
            try:
                choice.wait_for(timeout=10_000)
                return
            except PlaywrightTimeout:
                continue

    reopen()
    _choose(page, choice, "A new deck…" if new else re.compile(f"^{deck}"), reopen)
    if new:
        name = keyed(page, f"{key}-deck-name-{job_id}").locator("input")
        name.fill(deck)
        name.press("Enter")
        wait_for_app(page)
    add = keyed(page, f"{key}-deck-add-{job_id}").locator("button")
    expect(add).to_be_enabled()
    add.click()
    expect(page.get_by_text(re.compile(rf"Added to {deck} as slide"))).to_be_visible()
    page.keyboard.press("Escape")  # closes the popover
    wait_for_app(page)


def test_a_deck_made_from_a_batch_and_a_try_on_plays(browser: Browser, app_server: AppServer):
    people, clothes = persons(), garments()
    inputs = [JobInput(str(people[i].path), str(clothes[i].path)) for i in range(3)]
    batch_id = seed_finished_batch(app_server.data_dir, inputs, f"Deck source {time.time_ns()}")
    ledger = _ledger(app_server)
    try:
        first, second, _ = ledger.jobs(batch_id=batch_id)
        try_on = stored_try_on(ledger, app_server.data_dir, f"mixed-{time.monotonic_ns()}")
    finally:
        ledger.close()
    deck = f"Mixed {batch_id}"
    context = _context(browser, app_server, (1440, 900))
    try:
        page = context.new_page()
        open_app(page, f"/batch?batch={batch_id}")
        card = keyed(page, f"batch-card-{first.id}")
        _add_to_deck(page, card, "stage-add-card", first.id, deck, new=True)
        keyed(page, f"batch-open-{second.id}").locator("button").click()
        dialog = page.locator("[data-testid='stDialog']")
        expect(dialog).to_contain_text("Row 2")
        _add_to_deck(page, dialog, "stage-add-detail", second.id, deck, new=False)
        open_app(page, f"/try-on?job={try_on.id}")
        _add_to_deck(page, keyed(page, "tryon-result"), "tryon", try_on.id, deck, new=False)
        assert_no_exception(page)
    finally:
        context.close()
    ledger = _ledger(app_server)
    try:
        (made,) = [d for d in ledger.decks() if d.name == deck]
        assert [s.row_id for s in ledger.slides(made.id)] == [first.id, second.id, try_on.id]
    finally:
        ledger.close()
    context = _context(browser, app_server, (1280, 720))
    try:
        page = context.new_page()
        frame = _present(page, made.id)
        expect(page.locator("[data-testid='stSidebar']")).to_be_hidden()
        _no_scrolling(page)
        for number in (1, 2, 3):
            assert _counter(frame) == f"{number} / 3"
            assert _height(frame, ".slide.current .result img") >= 360
            page.keyboard.press("ArrowRight")
    finally:
        context.close()


def test_the_deck_plays_after_its_batch_is_deleted(browser: Browser, app_server: AppServer) -> None:
    deck_id, made = _seed_deck(app_server, "Kept")
    ledger = _ledger(app_server)
    try:
        for job in made:
            assert batchprogress.delete_batch(ledger, app_server.data_dir, job.batch_id) is not None
            assert ledger.job(job.id) is None
    finally:
        ledger.close()
    context = _context(browser, app_server, (1280, 720))
    outside: list[str] = []
    context.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if not request.url.startswith((app_server.url, "data:", "about:"))
            else None
        ),
    )
    try:
        page = context.new_page()
        frame = _present(page, deck_id)
        for number in (1, 2, 3):
            assert _counter(frame) == f"{number} / 3"
            expect(frame.locator(".slide.current .result img")).to_be_visible()
            page.keyboard.press("ArrowRight")
        assert outside == []  # never the result URLs (https://results.example.com/…)
    finally:
        context.close()


def test_a_slide_whose_pictures_were_removed_by_hand_is_a_placeholder(
    browser: Browser, app_server: AppServer
) -> None:
    deck_id, made = _seed_deck(app_server, "Damaged")
    Path(made[1].result_path or "").unlink()
    context = _context(browser, app_server, (1280, 720))
    try:
        page = context.new_page()
        frame = _present(page, deck_id)
        expect(frame.locator(".slide.current .result img")).to_be_visible()
        page.keyboard.press("ArrowRight")
        expect(frame.locator(".slide.current .placeholder")).to_have_text(
            "The pictures of this slide are no longer on this computer."
        )
        page.keyboard.press("ArrowRight")
        expect(frame.locator(".counter")).to_have_text("3 / 3")
        expect(frame.locator(".slide.current .result img")).to_be_visible()
        assert_no_exception(page)
    finally:
        context.close()


def test_the_privacy_delete_removes_the_slide_and_says_which_deck(
    browser: Browser, app_server: AppServer
) -> None:
    deck_id, made = _seed_deck(app_server, "Privacy", count=2)
    context = _context(browser, app_server, (1440, 900))
    try:
        page = context.new_page()
        open_app(page, f"/try-on?job={made[0].id}")
        page.get_by_text("Job details").click()
        wait_for_app(page)
        page.get_by_role("button", name=re.compile("Delete this try-on")).click()
        delete = keyed(page, f"tryon-delete-{made[0].id}").locator("button")
        expect(delete).to_be_visible()
        delete.click()
        expect(
            page.get_by_text(re.compile("taken out of the deck\\(s\\) “Privacy”"))
        ).to_be_visible()
        assert_no_exception(page)
    finally:
        context.close()
    ledger = _ledger(app_server)
    try:
        assert [slide.row_id for slide in ledger.slides(deck_id)] == [made[1].id]
        assert not Path(made[0].result_path or "").exists()
    finally:
        ledger.close()


def test_the_slideshow_file_is_self_contained_and_plays_offline(
    browser: Browser, app_server: AppServer, tmp_path: Path
) -> None:
    deck_id, _ = _seed_deck(app_server, "Export", notes=HOSTILE)
    context = _context(browser, app_server, (1440, 900))
    try:
        page = context.new_page()
        open_app(page, "/stage")
        _choose(page, keyed(page, "stage-chosen-deck"), re.compile(r"^Export · 3 slide"))
        saved = tmp_path / "deck.html"
        download(page, page.get_by_role("button", name="Slideshow HTML")).save_as(saved)
    finally:
        context.close()
    text = saved.read_text(encoding="utf-8")
    assert HOSTILE not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text)
    offline = browser.new_context(viewport={"width": 1280, "height": 720}, offline=True)
    requests: list[str] = []
    dialogs: list[str] = []
    offline.on("request", lambda request: requests.append(request.url))
    try:
        page = offline.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(saved.as_uri())
        expect(page.locator(".counter")).to_have_text("1 / 3")
        page.keyboard.press("ArrowRight")
        expect(page.locator(".counter")).to_have_text("2 / 3")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("n")
        expect(page.locator(".slide.current .notes")).to_have_text(HOSTILE)
        expect(page.locator(".slide.current .notes img")).to_have_count(0)
        page.keyboard.press("Space")
        expect(page.locator("body.compare")).to_have_count(1)
        _shot(page, "slideshow-file-1280x720")
        page.set_viewport_size({"width": 1920, "height": 1080})
        _shot(page, "slideshow-file-1920x1080")
        assert dialogs == []
        assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
    finally:
        offline.close()


def _visitor_rows(server: AppServer) -> list[JobRecord]:
    ledger = _ledger(server)
    try:
        return [ledger.job(row_id) for row_id, *_ in ledger.visitor_rows()]  # type: ignore[misc]
    finally:
        ledger.close()


def _start_visitor(page: Page, deck_id: int) -> None:
    """Open the deck, press L, upload the visitor's photo and press Try it on."""
    _present(page, deck_id)
    page.keyboard.press("l")
    expect(page.get_by_role("heading", name=re.compile("Try it live"))).to_be_visible()
    source = keyed(page, "stage-visitor-0-source")  # the session's first visitor
    source.get_by_role("radio", name="Upload", exact=True).click()
    page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(PERSON_PHOTO)
    wait_for_app(page)
    go = keyed(page, "stage-live-go").locator("button")
    expect(go).to_be_enabled()
    go.click()


def _try_it_live(page: Page, server: AppServer, deck_id: int) -> JobRecord:
    """A visitor's try-on run to its result on screen; its (finished) ledger row."""
    before = {job.id for job in _visitor_rows(server)}
    _start_visitor(page, deck_id)
    expect(keyed(page, "stage-live-result").locator("img")).to_be_visible(timeout=90_000)
    rows = [job for job in _visitor_rows(server) if job.id not in before]
    assert len(rows) == 1
    return rows[0]


def _check_visitor_left_nothing(server: AppServer, visitor: JobRecord) -> None:
    files = [Path(p) for p in (visitor.target, visitor.result_path, visitor.thumbnail_path) if p]
    assert files and all(path.is_relative_to(server.data_dir) for path in files)
    eventually(lambda: not any(path.exists() for path in files), "the visitor's files removed")
    ledger = _ledger(server)
    try:
        row = ledger.job(visitor.id)
        assert row is not None and row.deleted_at is not None
        assert (row.target, row.garment, row.result_path, row.thumbnail_path) == (
            "",
            "",
            None,
            None,
        )
    finally:
        ledger.close()


def test_try_it_live_then_reset_leaves_nothing_of_the_visitor(
    browser: Browser, app_server: AppServer
) -> None:
    deck_id, _ = _seed_deck(app_server, "Live")
    context = _context(browser, app_server, (1280, 720))
    try:
        page = context.new_page()
        visitor = _try_it_live(page, app_server, deck_id)
        _shot(page, "live-result-1280x720")
        page.keyboard.press("Escape")  # Reset's key
        page.wait_for_selector(FRAME)  # back to the deck
        _check_visitor_left_nothing(app_server, visitor)
        open_app(page, "/try-on")
        expect(keyed(page, f"tryon-recent-{visitor.id}")).to_have_count(0)
        open_app(page, "/batch")
        assert "Stage visitor" not in page.locator("[data-testid='stMain']").inner_text()
    finally:
        context.close()


@pytest.fixture(scope="module")
def idle_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """An app whose stage resets after 3 s without a key or click (then a 2 s countdown)."""
    server = start_app(
        tmp_path_factory.mktemp("idle-app"),
        {"MIRRAGO_STAGE_IDLE_MINUTES": "0.05", "MIRRAGO_SANDBOX_LATENCY": "0.5"},
    )
    yield server
    stop_app(server)


def test_the_stage_resets_by_itself_after_the_idle_time(
    browser: Browser, idle_app: AppServer
) -> None:
    deck_id, _ = _seed_deck(idle_app, "Idle")
    context = _context(browser, idle_app, (1280, 720))
    try:
        page = context.new_page()
        visitor = _try_it_live(page, idle_app, deck_id)
        expect(page.locator("#stage-idle-countdown")).to_contain_text("resets in", timeout=60_000)
        page.wait_for_selector(FRAME, timeout=60_000)
        _check_visitor_left_nothing(idle_app, visitor)
    finally:
        context.close()


def test_the_deck_plays_with_the_api_gone(browser: Browser, tmp_path: Path) -> None:
    sandbox = start_embedded(SandboxConfig(latency=0.2))
    server = start_app(
        tmp_path / "app",
        {
            "MIRRAGO_BASE_URL": sandbox.base_url,
            "MIRRAGO_CLIENT_ID": sandbox.client_id,
            "MIRRAGO_CLIENT_SECRET": sandbox.client_secret,
        },
    )
    try:
        deck_id, _ = _seed_deck(server, "Offline")
        sandbox.stop()  # the API is gone before the deck is opened
        context = _context(browser, server, (1280, 720))
        try:
            page = context.new_page()
            frame = _present(page, deck_id)
            for number in (1, 2, 3):
                assert _counter(frame) == f"{number} / 3"
                expect(frame.locator(".slide.current .result img")).to_be_visible()
                page.keyboard.press("ArrowRight")
        finally:
            context.close()
    finally:
        sandbox.stop()
        stop_app(server)


def test_when_the_live_api_fails_the_stage_continues_on_the_sandbox(
    browser: Browser, tmp_path: Path
) -> None:
    failing = start_embedded(SandboxConfig(latency=0.2, job_fail_rate=1.0))
    server = start_app(
        tmp_path / "app",
        {
            "MIRRAGO_BASE_URL": failing.base_url,
            "MIRRAGO_CLIENT_ID": failing.client_id,
            "MIRRAGO_CLIENT_SECRET": failing.client_secret,
            "MIRRAGO_SANDBOX_LATENCY": "0.5",
        },
    )
    try:
        deck_id, _ = _seed_deck(server, "Demo day")
        context = _context(browser, server, (1280, 720))
        try:
            page = context.new_page()
            _start_visitor(page, deck_id)
            expect(page.get_by_text("The live service failed")).to_be_visible()
            page.get_by_role("button", name="Continue on the embedded sandbox").click()
            expect(keyed(page, "stage-live-result").locator("img")).to_be_visible(timeout=90_000)
            first, second = _visitor_rows_all(server)
            assert first.deleted_at is not None  # the failed one is anonymised already
            assert second.backend.startswith("sandbox#") and second.deleted_at is None
            page.keyboard.press("Escape")
            page.wait_for_selector(FRAME)
            _check_visitor_left_nothing(server, second)
        finally:
            context.close()
    finally:
        stop_app(server)
        failing.stop()


def _visitor_rows_all(server: AppServer) -> list[JobRecord]:
    """Every visitor row, anonymised ones included, oldest first."""
    ledger = _ledger(server)
    try:
        visitors = {b.id for b in ledger.batches() if b.source == Origin.STAGE_VISITOR}
        return [job for job in ledger.jobs() if job.batch_id in visitors]
    finally:
        ledger.close()
