"""A state has one name: the Batch page, the Usage page and the CLI say the same word for a row
whose submission may or may not have reached the server."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mirrago.cli import main
from mirrago.ledger import JobState, Ledger
from mirrago.samples import garments, persons
from mirrago.sandbox.server import EmbeddedSandbox

APP = "../app.py"
pytestmark = pytest.mark.app  # AppTest pages, beside a CLI run
RUN_TIMEOUT = 90  # a deadline for one script run on a busy machine


def _page(path: str, **query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.run()
    for name, value in query.items():
        at.query_params[name] = value
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def test_an_unconfirmed_row_has_one_name_on_every_page_and_in_the_cli(
    make_sandbox: Callable[..., EmbeddedSandbox],
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = make_sandbox(submit_fail_rate=1.0)  # a plain 500 to every submission
    monkeypatch.setenv("MIRRAGO_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("MIRRAGO_CLIENT_ID", sandbox.client_id)
    monkeypatch.setenv("MIRRAGO_CLIENT_SECRET", sandbox.client_secret)
    source = workdir / "pairs.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(
            [
                ["target_image_url", "garment_image_url"],
                [str(persons()[0].path), str(garments()[0].path)],
            ]
        )
    assert main(["batch", str(source), "--out-dir", str(workdir / "out")]) == 1
    cli = capsys.readouterr().err
    ledger = Ledger(f"sqlite:///{workdir / 'data' / 'ledger.sqlite3'}")
    [batch] = ledger.batches()
    assert [row.state for row in ledger.jobs(batch_id=batch.id)] == [JobState.UNCERTAIN]
    ledger.close()

    word = "Unconfirmed"
    assert f"{word.lower()}=1" in cli and f"1 {word.lower()}" in cli
    batch_page = _page("pages/batch.py", batch=str(batch.id))
    assert word in [metric.label for metric in batch_page.metric]
    assert any(f"{word}]" in m.value for m in batch_page.markdown if "-badge[" in m.value)
    usage = _page("pages/usage.py")
    usage.session_state["usage-tab"] = "History"  # as a click on it: only the open tab is drawn
    usage.run()
    assert list(usage.dataframe[-1].value["State"]) == [word]
