"""In a real browser: the Try-on page's Link option given an address on the
machine itself or on a link-local network is refused by the service with a message saying so,
and nothing is fetched from it."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from browser_helpers import assert_no_exception, keyed, open_app, screenshot, wait_for_app
from playwright.sync_api import Page, Route, expect

pytestmark = pytest.mark.browser

REFUSED = "that address is on a private network; the service cannot fetch it"
RESULT_TIMEOUT = 90_000  # ms: a deadline, never waited out when the page is right


class HitCounter:
    """An image server on loopback that counts every request reaching it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hit_counter(page: Page) -> Iterator[HitCounter]:
    counter = HitCounter()
    # The page previews a link in the browser itself (an <img>): keep the browser away from the
    # counter and the link-local address, so every hit the counter sees came from the service.
    blocked = re.compile(rf"^http://(127\.0\.0\.1:{counter.port}|169\.254\.169\.254)(/|$)")

    def abort(route: Route) -> None:
        route.abort()

    page.route(blocked, abort)
    yield counter
    counter.close()


def try_person_link(page: Page, link: str) -> None:
    control = keyed(page, "tryon-person-source")
    control.get_by_role("radio", name="Link", exact=True).click()
    wait_for_app(page)
    field = keyed(page, "tryon-person-url").locator("input")
    field.fill(link)
    field.press("Enter")
    wait_for_app(page)
    button = keyed(page, "tryon-generate").get_by_role("button")
    expect(button).to_be_enabled()
    button.click()
    wait_for_app(page)


@pytest.mark.parametrize(
    ("name", "link"),
    [
        ("loopback", "http://127.0.0.1:{port}/person.png"),
        ("link-local", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
    ],
)
def test_link_to_a_private_address_is_refused_and_nothing_is_fetched(
    page: Page, hit_counter: HitCounter, name: str, link: str
) -> None:
    open_app(page, "/try-on")
    try_person_link(page, link.format(port=hit_counter.port))

    result = keyed(page, "tryon-result")
    expect(result).to_contain_text(REFUSED, timeout=RESULT_TIMEOUT)
    expect(result).to_contain_text("This try-on failed")
    text = result.inner_text().lower()
    assert "client id" not in text and "secret" not in text
    assert_no_exception(page)
    screenshot(page, f"try-on-private-link-{name}")
    assert hit_counter.hits == []
