"""Text a user typed (a username, a batch name) shows as text: a link written into it is never
made clickable, on the cards or in the detail dialog, whatever Markdown would autolink."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_app import AppServer
from browser_helpers import assert_no_exception, keyed, open_app, seed_finished_batch
from playwright.sync_api import Page, expect

from mirrago.ledger import JobInput
from mirrago.samples import garments, persons

pytestmark = pytest.mark.browser

HOSTILE = [
    '=HYPERLINK("http://attacker.invalid/steal?x=1","click")',
    "see www.attacker.invalid/now",
    "mail boss@attacker.invalid",
]


def _seed_batch_with_usernames(data_dir: Path, usernames: list[str]) -> int:
    person, garment = persons()[0].path, garments()[0].path
    inputs = [JobInput(str(person), str(garment), username=name) for name in usernames]
    return seed_finished_batch(data_dir, inputs, "visit https://attacker.invalid/")


def test_links_typed_into_usernames_and_batch_names_are_not_clickable(
    page: Page, app_server: AppServer
) -> None:
    batch_id = _seed_batch_with_usernames(app_server.data_dir, HOSTILE)
    open_app(page, f"/batch?batch={batch_id}")
    expect(keyed(page, "batch-header")).to_be_visible()
    expect(page.get_by_text("attacker", exact=False).first).to_be_visible()
    links = page.locator("[data-testid='stMain'] a[href*='attacker']")
    assert links.count() == 0, links.evaluate_all("links => links.map(l => l.outerHTML)")
    page.locator("[class*='st-key-batch-open-'] button").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("attacker")
    assert page.locator("a[href*='attacker']").count() == 0
    assert_no_exception(page)
