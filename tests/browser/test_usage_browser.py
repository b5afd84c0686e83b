"""The Usage page in a real browser, on a sandbox the test owns (so it can spend credits on the
same account outside Studio): empty state, then try-ons, a small CLI batch and jobs submitted
straight to the server; the chart, the metrics, the history and the export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_app import VIEWPORT, AppServer, start_app, stop_app
from browser_helpers import assert_no_exception, download, keyed, open_app, screenshot, wait_for_app
from playwright.sync_api import Browser, Locator, Page, expect

from mirrago.client import MirragoClient
from mirrago.config import Settings
from mirrago.ledger import JobInput, JobState
from mirrago.samples import garments, persons
from mirrago.sandbox.server import EmbeddedSandbox, SandboxConfig, embedded
from mirrago.services import open_services

pytestmark = pytest.mark.browser

RESULT_TIMEOUT = 90_000  # ms, a deadline: a busy machine can take long
OUTSIDE_JOBS = 3


@pytest.fixture(scope="module")
def account() -> Iterator[EmbeddedSandbox]:
    """The Mirrago account: a sandbox on loopback that the app reaches as its configured server."""
    with embedded(SandboxConfig(latency=0.3, starting_credits=500)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def usage_app(account: EmbeddedSandbox, tmp_path_factory: pytest.TempPathFactory):
    server = start_app(
        tmp_path_factory.mktemp("usage-app"),
        extra_env={
            "MIRRAGO_BASE_URL": account.base_url,
            "MIRRAGO_CLIENT_ID": account.client_id,
            "MIRRAGO_CLIENT_SECRET": account.client_secret,
        },
    )
    yield server
    stop_app(server)


@pytest.fixture
def usage_page(browser: Browser, usage_app: AppServer) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, base_url=usage_app.url)
    context.set_default_timeout(90_000)  # a deadline, as in conftest.py
    page = context.new_page()
    yield page
    context.close()


def _try_on(page: Page) -> None:
    open_app(page, "/try-on")
    button = keyed(page, "tryon-generate").get_by_role("button")
    expect(button).to_be_enabled()
    button.click()
    wait_for_app(page)
    result = keyed(page, "tryon-result")
    expect(result.get_by_role("button", name=re.compile("Download the result"))).to_be_visible(
        timeout=RESULT_TIMEOUT
    )


def _cli_batch(account: EmbeddedSandbox, server: AppServer, tmp: Path, mp: pytest.MonkeyPatch):
    """A small batch with `mirrago batch`, on the app's own ledger (the same data dir)."""
    from mirrago.cli import main

    for name, value in (
        ("MIRRAGO_BASE_URL", account.base_url),
        ("MIRRAGO_CLIENT_ID", account.client_id),
        ("MIRRAGO_CLIENT_SECRET", account.client_secret),
        ("MIRRAGO_DATA_DIR", str(server.data_dir)),
    ):
        mp.setenv(name, value)
    source = tmp / "pairs.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["target_image_url", "garment_image_url", "background", "username"])
        for person, garment in zip(persons()[:3], garments()[:3], strict=True):
            writer.writerow([str(person.path), str(garment.path), "", "qa-bot"])
    assert main(["batch", str(source), "--out-dir", str(tmp / "out"), "--name", "QA check"]) == 0


def _metric(page: Page, label: str) -> str:
    name = page.locator("[data-testid='stMetricLabel']", has_text=re.compile(f"^{label}$"))
    metric = page.locator("[data-testid='stMetric']").filter(has=name)
    return metric.locator("[data-testid='stMetricValue']").inner_text().strip()


def test_usage_page_shows_studio_and_outside_spending(
    usage_page: Page,
    usage_app: AppServer,
    account: EmbeddedSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = usage_page
    # A new user: the page says what to do first and links to Try-on.
    open_app(page, "/usage")
    expect(page.get_by_text("Nothing to show yet")).to_be_visible()
    expect(page.locator("[data-testid='stPageLink'] a")).to_have_attribute(
        "href", re.compile(r"try-on")
    )
    screenshot(page, "usage-empty")

    _try_on(page)
    _cli_batch(account, usage_app, tmp_path, monkeypatch)
    with MirragoClient(account.base_url, account.client_id, account.client_secret) as client:
        person, garment = persons()[0].path.read_bytes(), garments()[0].path.read_bytes()
        for _ in range(OUTSIDE_JOBS):  # the same account, spent by another tool
            client.generate(person, garment)
    _try_on(page)  # the next reading shows what was spent in between

    open_app(page, "/usage")
    assert_no_exception(page)
    chart = page.locator("[data-testid='stVegaLiteChart']").first
    expect(chart.locator("svg").first).to_be_attached()
    shown = page.locator("[data-testid='stMetric']").all_inner_texts()
    assert _metric(page, "Used outside Studio") == str(OUTSIDE_JOBS), shown
    assert _metric(page, "Spent") == "5", shown  # 2 try-ons and a batch of 3
    assert _metric(page, "Balance") == str(500 - 5 - OUTSIDE_JOBS), shown
    screenshot(page, "usage-after-try-ons")

    page.get_by_role("tab", name="History").click()
    wait_for_app(page)
    panel = page.get_by_role("tabpanel", name="History")
    expect(panel.locator("[data-testid='stDataFrame']")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Jobs 1–5 of 5"))).to_be_visible()
    history = download(page, keyed(page, "usage-export-history").get_by_role("button"))
    rows = list(csv.DictReader(io.StringIO(Path(history.path()).read_text())))
    assert len(rows) == 5
    assert {row["source"] for row in rows} == {"Try-on", "CLI"}
    assert sum(row["batch"] == "QA check" for row in rows) == 3
    screenshot(page, "usage-history")
    assert_no_exception(page)


# --------------------------------------------------------------------------- the local sandbox

SLOW_JOBS = 8  # run by a second Studio process while the page is open


@pytest.fixture(scope="module")
def sandbox_app(tmp_path_factory: pytest.TempPathFactory):
    """The app on its embedded sandbox (no MIRRAGO_BASE_URL), as a new user runs it."""
    server = start_app(
        tmp_path_factory.mktemp("usage-sandbox-app"),
        extra_env={"MIRRAGO_SANDBOX_LATENCY": "0.2-0.5"},
    )
    yield server
    stop_app(server)


def _sidebar_credits(page: Page) -> Locator:
    name = page.locator("[data-testid='stMetricLabel']", has_text=re.compile("^Credits$"))
    metric = page.locator("[data-testid='stSidebar'] [data-testid='stMetric']").filter(has=name)
    return metric.locator("[data-testid='stMetricValue']")


def _time_labels(page: Page) -> list[str]:
    """The credit chart's time axis labels, as drawn."""
    chart = page.locator("[data-testid='stVegaLiteChart']").first
    expect(chart.locator("svg").first).to_be_attached()
    # The x axis is the one whose labels stand side by side (one row), the y axis's in a column.
    return chart.evaluate(
        """chart => Array.from(chart.querySelectorAll('g.role-axis')).map(axis =>
              Array.from(axis.querySelectorAll('g.role-axis-label text')))
            .filter(texts => texts.length > 1 && new Set(texts.map(
              text => Math.round(text.getBoundingClientRect().top))).size === 1)
            .flat().map(text => text.textContent)"""
    )


def test_on_the_local_sandbox_every_studio_process_spends_from_one_balance(
    browser: Browser, sandbox_app: AppServer
) -> None:
    context = browser.new_context(viewport=VIEWPORT, base_url=sandbox_app.url)
    context.set_default_timeout(90_000)
    page = context.new_page()
    _try_on(page)  # the app's own embedded sandbox
    settings = Settings(data_dir=sandbox_app.data_dir, sandbox_latency=(0.2, 0.5))
    people, clothes = persons(), garments()
    jobs = [
        JobInput(str(people[i % len(people)].path), str(clothes[i % len(clothes)].path))
        for i in range(SLOW_JOBS)
    ]
    # A second Studio process on the same data dir (as `mirrago batch` is), with its own
    # embedded sandbox: its jobs are queued when the page opens, and run while it is open.
    with open_services(settings, start_runner=False, batch_ids=()) as services:
        first_row = services.runner.enqueue(jobs, name="Second process", source="cli:batch")[0]
        open_app(page, "/usage")
        credits = _sidebar_credits(page)
        first = credits.inner_text()
        services.runner.start()
        expect(credits).not_to_have_text(first)  # it moves while the jobs run, untouched
        counts = services.runner.wait(first_row.batch_id, timeout=120)
        assert counts[JobState.COMPLETED] == SLOW_JOBS, counts

    open_app(page, "/usage")
    assert_no_exception(page)
    shown = page.locator("[data-testid='stMetric']").all_inner_texts()
    spent = 1 + SLOW_JOBS
    assert _metric(page, "Used outside Studio") == "0", shown
    assert _metric(page, "Spent") == str(spent), shown
    assert _metric(page, "Balance") == f"{1000 - spent:,}", shown
    assert _sidebar_credits(page).inner_text() == f"{1000 - spent:,}"
    labels = _time_labels(page)
    # One format for every label: 12:50 or 12:50:30 (minutes of use), never ":30" beside them.
    assert labels and len({len(label) for label in labels}) == 1, labels
    assert all(re.fullmatch(r"\d\d:\d\d(:\d\d)?", label) for label in labels), labels
    assert len(set(labels)) == len(labels) <= 7, labels
    runs_out = page.locator("[data-testid='stMetric']", has_text="Runs out").inner_text()
    assert "too little history" in runs_out, shown
    screenshot(page, "usage-sandbox-one-balance")
    context.close()
