"""Sign-in for a shared deployment (issue 8): with `[auth]` configured, two people signed in
through an OpenID Connect provider on loopback never see each other's try-ons or photos."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_app import VIEWPORT, AppServer, free_port, start_app, stop_app
from browser_helpers import assert_no_exception, keyed, open_app, wait_for_app
from oidc_provider import auth_secrets, running_provider
from playwright.sync_api import Browser, BrowserContext, Page, expect

pytestmark = pytest.mark.browser

RESULT_TIMEOUT = 90_000  # ms: deadlines, not durations (a busy machine must not fail a page)


@pytest.fixture(scope="module")
def signed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with running_provider() as provider:
        port = free_port()
        secrets_toml = auth_secrets(f"http://127.0.0.1:{port}", provider)
        server = start_app(tmp_path_factory.mktemp("signed"), port=port,
                           secrets_toml=secrets_toml)
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
        keyed(alice, "tryon-generate").get_by_role("button").click()
        wait_for_app(alice)
        expect(keyed(alice, "tryon-result").get_by_role(
            "button", name=re.compile("Download the result"))).to_be_visible(timeout=RESULT_TIMEOUT)
        row_id = int(re.search(r"[?&]job=(\d+)", alice.url).group(1))
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
