"""Sign-in for a shared deployment: with `[auth]` configured, two people signed in
through an OpenID Connect provider on loopback never see each other's try-ons or photos."""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from browser_app import VIEWPORT, AppServer, free_port, start_app, stop_app
from browser_helpers import assert_no_exception, download, keyed, open_app, screenshot, wait_for_app
from oidc_provider import auth_secrets, running_provider
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect

pytestmark = pytest.mark.browser

RESULT_TIMEOUT = 90_000  # ms: deadlines, not durations (a busy machine must not fail a page)


@pytest.fixture(scope="module")
def signed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with running_provider() as provider:
        port = free_port()
        secrets_toml = auth_secrets(f"http://127.0.0.1:{port}", provider)
        server = start_app(tmp_path_factory.mktemp("signed"), port=port, secrets_toml=secrets_toml)
        try:
            yield server
        finally:
            stop_app(server)


def _signed_in(browser: Browser, server: AppServer, email: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport=VIEWPORT, base_url=server.url)
    context.set_default_timeout(90_000)
    page = context.new_page()
    page.goto("/try-on")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Subject").fill(email)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_selector("[data-testid='stMain'] [data-testid='stHeading']")
    wait_for_app(page)
    expect(page.locator("[data-testid='stSidebar']")).to_contain_text(email)
    return context, page


def _generate(page: Page) -> int:
    """Click Generate, wait for the result; the try-on's ledger row id (from the page URL)."""
    keyed(page, "tryon-generate").get_by_role("button").click()
    wait_for_app(page)
    expect(
        keyed(page, "tryon-result").get_by_role("button", name=re.compile("Download the result"))
    ).to_be_visible(timeout=RESULT_TIMEOUT)
    expect(page).to_have_url(re.compile(r"[?&]job=\d+"))  # the URL follows the rerun: wait
    return int(re.search(r"[?&]job=(\d+)", page.url).group(1))


def test_without_sign_in_nothing_is_shown(browser: Browser, signed_app: AppServer):
    context = browser.new_context(viewport=VIEWPORT, base_url=signed_app.url)
    page = context.new_page()
    open_app(page, "/try-on")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Recent try-ons")).to_have_count(0)
    assert_no_exception(page)
    context.close()


def test_two_people_never_see_each_others_try_ons(browser: Browser, signed_app: AppServer):
    alice_context, alice = _signed_in(browser, signed_app, "alice@example.com")
    bob_context, bob = _signed_in(browser, signed_app, "bob@example.com")
    try:
        field = keyed(alice, "tryon-username").locator("input")
        field.fill("alice-private")
        field.press("Enter")
        wait_for_app(alice)
        row_id = _generate(alice)
        expect(keyed(alice, f"tryon-recent-{row_id}")).to_be_visible()
        with sqlite3.connect(Path(signed_app.data_dir) / "ledger.sqlite3") as conn:
            (owner,) = conn.execute("SELECT owner FROM jobs WHERE id = ?", (row_id,)).fetchone()
        assert owner == "alice@example.com"

        # Bob: no card, and Alice's link opens nothing of hers.
        open_app(bob, "/try-on")
        expect(keyed(bob, f"tryon-recent-{row_id}")).to_have_count(0)
        expect(bob.get_by_text("Your try-ons will appear here")).to_be_visible()
        open_app(bob, f"/try-on?job={row_id}")
        result = keyed(bob, "tryon-result")
        expect(result.get_by_role("button", name=re.compile("Download"))).to_have_count(0)
        expect(result).to_contain_text("Generate to see the result here")
        expect(bob.locator("[data-testid='stMain']")).not_to_contain_text("alice")
        expect(keyed(bob, "tryon-person-preview")).not_to_contain_text("used by this try-on")
        assert_no_exception(bob)
    finally:
        alice_context.close()
        bob_context.close()


_PHOTO_SLOTS = ("tryon-person-preview", "tryon-result")
_ALL_SRCS = "els => els.map(el => el.getAttribute('src') || el.getAttribute('href') || '')"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _image_bytes(context: BrowserContext, base: str, src: str) -> bytes:
    if src.startswith("data:"):
        return base64.b64decode(src.split(",", 1)[1])
    response = context.request.get(urljoin(base, src))
    assert response.ok, src
    return response.body()


def test_a_persons_photos_are_reachable_by_no_url(
    browser: Browser, signed_app: AppServer, tmp_path: Path
):
    person = tmp_path / "dana.jpg"
    image = Image.new("RGB", (600, 800), (30, 120, 90))
    image.paste((230, 200, 170), (200, 80, 400, 260))
    image.save(person, quality=92)
    dana_context, dana = _signed_in(browser, signed_app, "dana@example.com")
    erin_context, _erin = _signed_in(browser, signed_app, "erin@example.com")
    anonymous = browser.new_context(base_url=signed_app.url)
    requested: set[str] = set()
    dana.on("request", lambda request: requested.add(request.url))
    try:
        keyed(dana, "tryon-person-source").get_by_role("radio", name="Upload", exact=True).click()
        wait_for_app(dana)
        keyed(dana, "tryon-person-upload").locator("input[type=file]").set_input_files(person)
        wait_for_app(dana)
        row_id = _generate(dana)
        open_app(dana, f"/try-on?job={row_id}")  # opened as a link: the job's own inputs
        expect(keyed(dana, "tryon-person-preview")).to_contain_text("used by this try-on")
        slider = keyed(dana, f"tryon-compare-{row_id}").get_by_role("slider")
        slider.focus()
        for _ in range(10):  # the before/after frame: part photo, part result
            slider.press("ArrowRight")
        wait_for_app(dana)
        expect(keyed(dana, f"tryon-compare-{row_id}")).to_contain_text("10%")
        screenshot(dana, "try-on-signed-in")

        # Everything of Dana's on screen, as bytes: the slots' images, her upload, the result.
        with sqlite3.connect(Path(signed_app.data_dir) / "ledger.sqlite3") as conn:
            stored = conn.execute(
                "SELECT target, result_path, thumbnail_path FROM jobs WHERE id = ?", (row_id,)
            ).fetchone()
        dana_files = [person.read_bytes()] + [Path(p).read_bytes() for p in stored if p]
        slot_srcs = [
            src
            for key in (*_PHOTO_SLOTS, f"tryon-recent-{row_id}")
            for src in keyed(dana, key).locator("img").evaluate_all(_ALL_SRCS)
        ]
        assert len(slot_srcs) >= 3, slot_srcs  # the photo, the compare frame, the card
        private = {_digest(data) for data in dana_files}
        private |= {_digest(_image_bytes(dana_context, dana.url, src)) for src in slot_srcs}

        # Every URL the page names or fetched, fetched as Erin and as nobody.
        named = dana.locator("img, a[href], source").evaluate_all(_ALL_SRCS)
        urls = {urljoin(dana.url, url) for url in [*named, *requested] if url}
        urls = {
            url
            for url in urls
            if urlsplit(url).scheme in ("http", "https")
            and urlsplit(url).hostname in ("127.0.0.1", "localhost")
            and "oauth" not in url
            and "/auth/" not in url
        }
        assert urls
        for other in (erin_context, anonymous):
            for url in sorted(urls):
                response = other.request.get(url)
                if response.ok:
                    assert _digest(response.body()) not in private, f"{url} serves Dana's photo"
        assert not [src for src in slot_srcs if "/media/" in src], slot_srcs

        # The result is made into a file only on Dana's click, and it is the result.
        result = download(
            dana,
            keyed(dana, "tryon-result").get_by_role(
                "button", name=re.compile("Download the result")
            ),
        )
        assert Path(result.path()).read_bytes() == Path(stored[1]).read_bytes()
        assert_no_exception(dana)
    finally:
        dana_context.close()
        erin_context.close()
        anonymous.close()
