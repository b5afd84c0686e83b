"""Text a user typed (a username, a batch name) shows as text: a link written into it is never
made clickable, on the cards or in the detail dialog, whatever Markdown would autolink."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from browser_app import AppServer
from browser_helpers import assert_no_exception, keyed, open_app
from PIL import Image
from playwright.sync_api import Page, expect

from mirrago import ledger as ledger_module
from mirrago.ledger import JobInput, Ledger
from mirrago.samples import garments, persons

pytestmark = pytest.mark.browser

HOSTILE = [
    '=HYPERLINK("http://attacker.invalid/steal?x=1","click")',
    "see www.attacker.invalid/now",
    "mail boss@attacker.invalid",
]


def _seed_batch_with_usernames(data_dir: Path, usernames: list[str]) -> int:
    thumbs = data_dir / "thumbs"
    thumbs.mkdir(parents=True, exist_ok=True)
    thumb = thumbs / "user-text.jpg"
    Image.new("RGB", (240, 320), (120, 90, 200)).save(thumb, "JPEG")
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    try:
        person, garment = persons()[0].path, garments()[0].path
        inputs = [JobInput(str(person), str(garment), username=name) for name in usernames]
        batch = ledger.create_batch(
            "visit https://attacker.invalid/", "batch-page", inputs, backend="test:seeded",
            private=True,
        )
        jobs, batches = ledger_module.jobs, ledger_module.batches
        now = ledger_module.utcnow()
        with ledger._write() as conn:  # noqa: SLF001 - seeding finished rows in one statement
            conn.execute(jobs.update().where(jobs.c.batch_id == batch.id).values(
                state="completed", job_id="text-" + jobs.c.id.cast(sa.Text),
                submitted_at=now, finished_at=now, thumbnail_path=str(thumb),
                result_path=str(thumb)))
            conn.execute(batches.update().where(batches.c.id == batch.id).values(private=False))
        return batch.id
    finally:
        ledger.close()


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
