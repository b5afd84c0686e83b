"""The quality checks on the Batch page in real headless Chromium: the sort "Most suspect first",
the chips on the cards, the "Show where it changed" overlay in the detail dialog, the filter by
flag, "not checked" with its reason, the agreement with verdicts in Review & reports, the
offer to score a batch again, the Results CSV's `suspect_score` and `flags`, and a batch run
on the page getting its checks from the background checker.

One app server for the module. Its ledger holds a finished batch made of real sandbox renders
of the shipped samples and defects made from them (`mirrago.triage.testset`), scored by the
real checks before the app starts; 16 of them judged (the defects failed, the good renders
passed). Screenshots at 1440 px go to test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from browser_app import ARTIFACTS, AppServer, start_app, stop_app
from browser_helpers import (
    assert_no_exception,
    download,
    keyed,
    open_app,
    screenshot,
    wait_for_app,
)
from playwright.sync_api import Browser, BrowserContext, Page, expect

from mirrago import review
from mirrago.images import make_thumbnail
from mirrago.ledger import JobInput, Ledger
from mirrago.models import JobStatus, Submission
from mirrago.samples import find
from mirrago.triage.testset import DEFECT_FLAGS, good_renders, write_cases
from mirrago.triage.worker import rescore

pytestmark = pytest.mark.browser

RUNNER = "triage-browser:1:test"
BACKEND = "test:seeded"
PAIRS = (
    ("studio-ana", "striped-tee"),
    ("studio-kofi", "red-hoodie"),
    ("studio-mei", "floral-dress"),
)
KINDS = ("good", "recoloured", "face_replaced", "background_replaced", "blurred", "no_change")
LINK = "https://images.example.invalid/person.jpg"


def _seed(ledger: Ledger, data_dir: Path, folder: Path) -> tuple[int, int]:
    """A finished batch of real renders and defects (plus one row whose person photo is a
    link), checked by the real checks; and an older batch scored by an older version."""
    pairs = [(find("person", p), find("garment", g)) for p, g in PAIRS]
    cases = [case for case in write_cases(good_renders(pairs), folder) if case.kind in KINDS]
    inputs = [JobInput(str(case.person), str(case.garment)) for case in cases]
    inputs.append(JobInput(LINK, str(cases[0].garment)))
    files = [case.result for case in cases] + [cases[0].result]
    batch = _finished(ledger, data_dir, "Checked renders", inputs, files)
    rescore(ledger, batch)
    rows = sorted(ledger.jobs(batch_id=batch), key=lambda row: row.row_index)
    for row, case in list(zip(rows, cases, strict=False))[:16]:  # defects failed, goods passed
        verdict = review.PASS if case.kind == "good" else review.FAIL
        reasons = [] if verdict == review.PASS else ["artifacts"]
        review.give_verdict(ledger, row, verdict, reasons, None, reviewer="QA Ana", seconds=2.0)
    older = _finished(ledger, data_dir, "Scored before", inputs[:2], files[:2])
    for row in ledger.jobs(batch_id=older):
        ledger.record_triage(row.id, checks_version=0, score=0.1, flags=(), values={})
    return batch, older


def _finished(
    ledger: Ledger, data_dir: Path, name: str, inputs: list[JobInput], files: list[Path]
) -> int:
    """A batch whose rows went through the runner's ledger moves, each completed with its
    result file and thumbnail in the data dir."""
    batch = ledger.create_batch(name, f"test:{name}", inputs, backend=BACKEND, private=True)
    ledger.register_runner(RUNNER)
    (data_dir / "results").mkdir(parents=True, exist_ok=True)
    (data_dir / "thumbs").mkdir(parents=True, exist_ok=True)
    try:
        while (row := ledger.claim_next(RUNNER, [batch.id], backend=BACKEND)) is not None:
            job_id = f"t-{batch.id}-{row.row_index + 1:04d}"
            ledger.record_submission(
                row.id,
                RUNNER,
                Submission(
                    job_id,
                    JobStatus.IN_PROGRESS,
                    "queued",
                    None,
                    None,
                    None,
                    900,
                    datetime.now(UTC),
                ),
            )
            source = files[row.row_index]
            result = data_dir / "results" / f"{job_id}{source.suffix}"
            thumb = data_dir / "thumbs" / f"{job_id}.jpg"
            shutil.copy(source, result)
            thumb.write_bytes(make_thumbnail(source.read_bytes(), max_side=320))
            ledger.complete(
                row.id,
                RUNNER,
                server_status="completed",
                result_url=f"https://results.example.invalid/{job_id}",
                result_path=str(result),
                thumbnail_path=str(thumb),
            )
    finally:
        ledger.unregister_runner(RUNNER)
    return batch.id


@pytest.fixture(scope="module")
def triage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppServer, dict]]:
    workdir = tmp_path_factory.mktemp("triage-app")
    data_dir = workdir / "data"
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    try:
        batch, older = _seed(ledger, data_dir, workdir / "cases")
    finally:
        ledger.close()
    server = start_app(workdir)
    yield server, {"batch": batch, "older": older}
    stop_app(server)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(server.log_path, ARTIFACTS / "streamlit-triage.log")


@pytest.fixture
def triage_page(browser: Browser, triage_server: tuple[AppServer, dict]) -> Iterator[Page]:
    server, _ = triage_server
    context: BrowserContext = browser.new_context(
        viewport={"width": 1440, "height": 900}, base_url=server.url, accept_downloads=True
    )
    context.set_default_timeout(90_000)  # a deadline
    page = context.new_page()
    yield page
    context.close()


def _open(page: Page, batch_id: int) -> None:
    page.goto(f"/batch?batch={batch_id}")
    wait_for_app(page, timeout=120)  # the first visit starts the services
    expect(keyed(page, "batch-grid")).to_be_visible()
    per_page = keyed(page, "batch-gallery-per-page")
    if per_page.count():  # every card on one page (19 rows; 12 a page by default)
        per_page.get_by_role("radio", name="24", exact=True).click()
        wait_for_app(page)
        expect(keyed(page, "batch-gallery-page")).to_have_count(0)


_CARD_TEXTS = """() => Array.from(document.querySelectorAll("[class*='st-key-batch-card-']"))
    .filter(e => Array.from(e.classList).some(c => /^st-key-batch-card-\\d+$/.test(c)))
    .map(e => e.innerText)"""


def _card_texts(page: Page) -> list[str]:
    """The cards' texts, in the grid's order."""
    return page.evaluate(_CARD_TEXTS)


def _scores(texts: list[str]) -> list[float]:
    return [float(t.split("Suspect score ")[1].split()[0]) for t in texts if "Suspect score" in t]


def _pick(page: Page, label: str, option: str) -> None:
    page.get_by_label(label).or_(page.locator(f"[aria-label='{label}']")).first.click()
    page.get_by_role("option", name=option).click()
    page.keyboard.press("Escape")
    wait_for_app(page)


def test_cards_show_chips_and_most_suspect_first_puts_the_defects_first(
    triage_page: Page, triage_server: tuple[AppServer, dict]
) -> None:
    page = triage_page
    _open(page, triage_server[1]["batch"])
    grid = keyed(page, "batch-grid")
    expect(grid.get_by_text("Colour off: ΔE", exact=False).first).to_be_visible()
    expect(grid.get_by_text("Unchanged: 0", exact=False).first).to_be_visible()
    expect(grid.get_by_text("Not checked: the person photo is a link", exact=False)).to_be_visible()
    screenshot(page, "triage-cards-by-row")

    by_row = _card_texts(page)
    assert _scores(by_row) != sorted(_scores(by_row), reverse=True)
    keyed(page, "batch-sort").get_by_text("Most suspect first").click()
    wait_for_app(page)
    # the run the click starts may not have begun when the app first looks idle: wait for the
    # grid to change, then check its order
    page.wait_for_function(
        f"(before) => {{ const now = ({_CARD_TEXTS})();"
        " return now.length !== before.length || now.some((text, i) => text !== before[i]); }",
        arg=by_row,
        timeout=60_000,
        polling=200,
    )
    wait_for_app(page)
    texts = _card_texts(page)
    assert len(texts) == len(by_row)
    assert _scores(texts) == sorted(_scores(by_row), reverse=True)
    assert all("no flags" not in text for text in texts[:4])  # the defects first
    assert "Not checked" in texts[-1]  # unscored after every scored one
    assert_no_exception(page)
    screenshot(page, "triage-most-suspect-first")


def test_the_flag_filter_and_the_overlay_in_the_detail_dialog(
    triage_page: Page, triage_server: tuple[AppServer, dict]
) -> None:
    page = triage_page
    _open(page, triage_server[1]["batch"])
    everything = len(_card_texts(page))
    _pick(page, "Flag", "Face changed")
    # A busy page may show the unfiltered grid a moment after the run: wait for the new one.
    page.wait_for_function(
        f"() => ({_CARD_TEXTS})().length < {everything}", timeout=60_000, polling=200
    )
    texts = _card_texts(page)
    assert 1 <= len(texts) < everything
    assert all("Face changed:" in text for text in texts)

    grid = keyed(page, "batch-grid")
    grid.get_by_role("button", name="Open").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Face changed:", exact=False).first).to_be_visible()
    wait_for_app(page)  # the neighbours' preloaded pictures arrive with the dialog's run
    before = dialog.locator("img").count()
    dialog.get_by_text("Show where the face changed").click()
    wait_for_app(page)
    expect(dialog.get_by_text("Where the face changed (tinted)")).to_be_visible()
    assert dialog.locator("img").count() == before + 1
    assert_no_exception(page)
    screenshot(page, "triage-detail-overlay")


def test_review_and_reports_shows_the_agreement_with_verdicts(
    triage_page: Page, triage_server: tuple[AppServer, dict], tmp_path: Path
) -> None:
    page = triage_page
    _open(page, triage_server[1]["batch"])
    page.get_by_text("Review & reports", exact=True).first.click()
    wait_for_app(page)
    section = keyed(page, "triage-agreement")
    expect(section.get_by_text("Quality checks and verdicts")).to_be_visible()
    table = section.locator("table")
    expect(table).to_be_visible()
    text = table.inner_text()
    assert "Precision" in text and "Recall" in text and "Any flag" in text
    assert "Colour off" in text and "(" in text  # counts beside the shares
    section.scroll_into_view_if_needed()
    assert_no_exception(page)
    screenshot(page, "triage-agreement")

    keyed(page, "review-export").locator("button").first.click()
    target = tmp_path / "results.csv"
    download(page, page.get_by_role("button", name="Results CSV")).save_as(target)
    rows = list(csv.DictReader(io.StringIO(target.read_text("utf-8-sig"))))
    assert {"suspect_score", "flags"} <= set(rows[0])
    flagged = [row for row in rows if row["flags"]]
    assert flagged and all(
        set(row["flags"].split(";")) <= set(DEFECT_FLAGS.values()) for row in flagged
    )
    assert all(len(row["suspect_score"].split(".")[1]) == 2 for row in rows if row["suspect_score"])


def test_a_batch_scored_by_older_checks_is_offered_a_rescore(
    triage_page: Page, triage_server: tuple[AppServer, dict]
) -> None:
    page = triage_page
    _open(page, triage_server[1]["older"])
    offer = keyed(page, "triage-rescore")
    expect(
        offer.get_by_text("not scored by the current quality checks", exact=False)
    ).to_be_visible()
    offer.get_by_role("button", name="Score again").click()
    wait_for_app(page)
    expect(keyed(page, "triage-rescore")).to_have_count(0)
    expect(
        keyed(page, "batch-grid").get_by_text("Suspect score", exact=False).first
    ).to_be_visible()
    assert_no_exception(page)


def test_a_batch_run_on_the_page_gets_its_checks_without_a_reload(page: Page) -> None:
    """The shared app on its embedded sandbox: four sample rows run; once the runner rests,
    the background checker scores them and the cards show it, with no reload."""
    open_app(page, "/batch")
    keyed(page, "batch-view").get_by_role("radio", name=re.compile("New batch")).click()
    wait_for_app(page)
    keyed(page, "batch-add-samples").get_by_role("button").click()
    wait_for_app(page)
    keyed(page, "batch-run").get_by_role("button").click()
    expect(keyed(page, "batch-header")).to_contain_text("Finished", timeout=90_000)
    grid = keyed(page, "batch-grid")
    expect(grid.get_by_text("Suspect score", exact=False)).to_have_count(4, timeout=120_000)
    assert "Checks: waiting" not in grid.inner_text()
    assert_no_exception(page)
