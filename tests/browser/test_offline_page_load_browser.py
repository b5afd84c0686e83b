"""A page load makes no request outside this machine: every script, style, font and icon the
browser asks for while opening each page comes from the app's own (loopback) server."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from browser_helpers import open_app
from playwright.sync_api import BrowserContext

pytestmark = pytest.mark.browser

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _outside(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome-extension"):
        return False
    return (parts.hostname or "") not in LOCAL_HOSTS


@pytest.mark.parametrize("path", ["/try-on", "/batch", "/usage"])
def test_opening_a_page_asks_nothing_of_any_other_host(context: BrowserContext, path: str):
    asked: list[str] = []
    context.on("request", lambda request: asked.append(request.url))
    page = context.new_page()
    open_app(page, path)
    # Headless Chromium does not fetch favicons by itself: the icon the page declares must be
    # one the browser could load without going outside either.
    icons = page.locator("link[rel~='icon']").evaluate_all("links => links.map(l => l.href)")
    assert icons, "the page declares no icon"
    outside = [url for url in asked + icons if _outside(url)]
    assert outside == [], f"requests outside this machine: {outside[:5]}"
