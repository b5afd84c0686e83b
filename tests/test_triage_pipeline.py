"""Where the quality checks run and what they leave: the ledger's records (and the migration
that adds them), the runner's background checker, `mirrago triage` and results.csv."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from review_data import finished_batch, grid_pairs
from support import eventually, url_inputs, version_before

from mirrago import review
from mirrago.cli import main
from mirrago.ledger import SCHEMA_VERSION, JobInput, JobState, Ledger
from mirrago.review import exports, report
from mirrago.runner import Runner
from mirrago.samples import garments, persons
from mirrago.sandbox.server import EmbeddedSandbox
from mirrago.triage import CHECKS_VERSION
from mirrago.triage import worker as triage_worker

B = "http://127.0.0.1:1#test-client"


def one_row(ledger: Ledger) -> int:
    batch = ledger.create_batch("b", "src", [JobInput("p.jpg", "g.png")], backend=B)
    return ledger.jobs(batch_id=batch.id)[0].id


# --------------------------------------------------------------------------- the ledger


@pytest.mark.every_database
def test_a_ledger_from_before_the_checks_gets_their_table(ledger_url: str) -> None:
    made = Ledger(ledger_url)
    row_id = one_row(made)
    with made._engine.begin() as conn:  # noqa: SLF001 - make it the previous schema's ledger
        conn.execute(sa.text("DROP TABLE triage_results"))
        conn.execute(sa.text("DELETE FROM schema_version"))
        conn.execute(
            sa.text(f"INSERT INTO schema_version VALUES ({version_before('_add_triage_results')})")
        )
    made.close()

    upgraded = Ledger(ledger_url)
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        assert upgraded.triage(row_id) is None
        upgraded.record_triage(row_id, checks_version=1, score=0.2, flags=(), values={})
        assert upgraded.triage(row_id).score == 0.2
    finally:
        upgraded.close()


@pytest.mark.every_database
def test_a_check_is_recorded_replaced_and_read_back(ledger: Ledger) -> None:
    row_id = one_row(ledger)
    ledger.record_triage(
        row_id, checks_version=1, score=0.9, flags=["colour_off"], values={"colour_off": 23.4}
    )
    ledger.record_triage(
        row_id,
        checks_version=2,
        score=0.81234,
        flags=["colour_off", "low_quality"],
        values={"colour_off": 20.0, "face_changed": None},
    )
    found = ledger.triage(row_id)
    assert found is not None and found.checked and found.checks_version == 2
    assert (
        found.flags == ("colour_off", "low_quality")
        and found.flags_text == "colour_off;low_quality"
    )
    assert found.score_text == "0.81" and found.values == {"colour_off": 20.0, "face_changed": None}
    assert list(ledger.batch_triage(ledger.job(row_id).batch_id)) == [row_id]


@pytest.mark.every_database
def test_a_result_not_checked_keeps_its_reason_and_no_score(ledger: Ledger) -> None:
    row_id = one_row(ledger)
    ledger.record_triage(
        row_id, checks_version=1, score=None, not_checked="the person photo file is missing"
    )
    found = ledger.triage(row_id)
    assert not found.checked and found.not_checked == "the person photo file is missing"
    assert found.score_text == "" and found.flags_text == ""


def test_only_rows_checked_by_an_older_version_are_rescored(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger
) -> None:
    runner = make_runner(sandbox)
    runner.start()
    batch_id = runner.enqueue(url_inputs(sandbox, 3), name="b", source="t")[0].batch_id
    runner.wait(batch_id, timeout=60)
    rows = ledger.jobs(batch_id=batch_id)
    runner.triage.wait(timeout=60)
    ledger.record_triage(rows[0].id, checks_version=CHECKS_VERSION - 1, score=0.1)

    stale = ledger.rows_to_triage(batch_id, older_than=CHECKS_VERSION)
    assert [row.id for row in stale] == [rows[0].id]
    assert triage_worker.rescore(ledger, batch_id) == 1
    assert ledger.triage(rows[0].id).checks_version == CHECKS_VERSION
    assert len(ledger.rows_to_triage(batch_id)) == 3  # every completed row, for --all


# --------------------------------------------------------------------------- the runner


@pytest.mark.slow
def test_the_runner_checks_each_stored_result_in_the_background(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger
) -> None:
    runner = make_runner(sandbox)
    runner.start()
    photos = [JobInput(str(persons()[0].path), str(garments()[1].path))]
    batch_id = runner.enqueue(url_inputs(sandbox, 3) + photos, name="b", source="t")[0].batch_id
    runner.wait(batch_id, timeout=60)

    rows = ledger.jobs(batch_id=batch_id)
    eventually(lambda: len(ledger.batch_triage(batch_id)) == 4, "every result checked")
    for row in rows:
        found = ledger.triage(row.id)
        assert found.checked and 0.0 <= found.score <= 1.0, found
        assert found.checks_version == CHECKS_VERSION and found.attempt == row.attempts


def test_a_check_that_raises_is_logged_and_recorded_not_checked(
    sandbox: EmbeddedSandbox,
    make_runner: Callable[..., Runner],
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = make_runner(sandbox)
    runner.start()
    batch_id = runner.enqueue(url_inputs(sandbox, 2), name="b", source="t")[0].batch_id
    counts = runner.wait(batch_id, timeout=60)
    assert counts[JobState.COMPLETED] == 2

    def broken_check(row: object, base_url: object) -> None:  # a bug in a check
        raise ZeroDivisionError("division by zero")

    checker = triage_worker.TriageWorker(ledger, check=broken_check)
    for row in ledger.jobs(batch_id=batch_id):
        checker.submit(row.id)
    assert checker.wait(timeout=30)
    checker.stop()
    for found in ledger.batch_triage(batch_id).values():
        assert found.score is None and found.not_checked == "the checks failed (ZeroDivisionError)"
    assert "the quality checks failed" in caplog.text
    assert all(row.state is JobState.COMPLETED for row in ledger.jobs(batch_id=batch_id))


def test_a_link_to_another_host_is_not_fetched_and_says_so(ledger: Ledger, tmp_path: Path) -> None:
    result = tmp_path / "result.png"
    shutil.copy(persons()[0].path, result)
    batch = ledger.create_batch(
        "b",
        "src",
        [JobInput("https://images.example.com/p.jpg", str(garments()[0].path))],
        backend=B,
    )
    row = ledger.jobs(batch_id=batch.id)[0]
    row = replace(row, result_path=str(result))
    found = triage_worker.check_row(row)
    assert found.reason == "the person photo is a link: only stored photos are checked"


# --------------------------------------------------------------------------- the CLI


@pytest.mark.slow
def test_mirrago_batch_writes_score_and_flags_and_mirrago_triage_rescores(
    make_sandbox: Callable[..., EmbeddedSandbox],
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = make_sandbox(workers=4)
    monkeypatch.setenv("MIRRAGO_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("MIRRAGO_CLIENT_ID", sandbox.client_id)
    monkeypatch.setenv("MIRRAGO_CLIENT_SECRET", sandbox.client_secret)
    source = workdir / "pairs.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["target_image_url", "garment_image_url"])
        writer.writerows([[i.target, i.garment] for i in url_inputs(sandbox, 3)])

    assert main(["batch", str(source), "--out-dir", str(workdir / "out")]) == 0

    with (workdir / "out" / "results.csv").open(newline="") as handle:
        results = list(csv.DictReader(handle))
    assert list(results[0])[-2:] == ["suspect_score", "flags"]
    for result in results:
        assert result["status"] == "completed"
        score = float(result["suspect_score"])
        assert 0.0 <= score <= 1.0 and len(result["suspect_score"].split(".")[1]) == 2
        assert all(code for code in result["flags"].split(";") if result["flags"])
    capsys.readouterr()

    assert main(["triage", "pairs", "--all"]) == 0
    out = capsys.readouterr().out
    assert "3 result(s) checked now" in out and "checked: 3  not checked: 0" in out
    assert main(["triage", "no-such-batch"]) == 2
    assert "no batch 'no-such-batch'" in capsys.readouterr().err


# --------------------------------------------------------------------------- exports


def test_the_results_csv_and_the_html_report_carry_score_and_flags(
    ledger: Ledger, tmp_path: Path
) -> None:
    batch = finished_batch(ledger, tmp_path / "data", grid_pairs(1, 2), name="exported")
    first, second = sorted(ledger.jobs(batch_id=batch.id), key=lambda row: row.row_index)
    ledger.record_triage(
        first.id,
        checks_version=CHECKS_VERSION,
        score=0.876,
        flags=["colour_off"],
        values={"colour_off": 23.2},
    )
    ledger.record_triage(
        second.id,
        checks_version=CHECKS_VERSION,
        score=None,
        not_checked="the result does not decode as an image (OSError)",
    )

    text = exports.results_csv(ledger, batch.id).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["suspect_score"], r["flags"]) for r in rows] == [("0.88", "colour_off"), ("", "")]
    page = io.StringIO()
    report.write_html(ledger, batch.id, page)
    html = page.getvalue()
    assert 'data-suspect-score="0.88" data-flags="colour_off"' in html
    assert "Colour off: ΔE 23" in html
    assert "Not checked: the result does not decode as an image (OSError)" in html


def test_a_missing_input_leaves_the_row_not_checked_and_nothing_else_changed(
    ledger: Ledger, tmp_path: Path
) -> None:
    photo = tmp_path / "me.jpg"
    shutil.copy(persons()[0].path, photo)
    pairs = [JobInput(str(photo), str(garments()[0].path))]
    batch = finished_batch(ledger, tmp_path / "data", pairs, name="gone")
    row = ledger.jobs(batch_id=batch.id)[0]
    review.give_verdict(ledger, row, review.PASS, [], reviewer="QA Ana")
    before = ledger.job(row.id)
    photo.unlink()

    assert triage_worker.rescore(ledger, batch.id) == 1

    found = ledger.triage(row.id)
    assert not found.checked and found.not_checked == "the person photo file is missing"
    assert found.score is None and found.flags == ()
    assert ledger.job(row.id) == before  # state, result and verdict as they were


@pytest.mark.every_database
def test_results_waiting_for_the_checks_are_counted_until_checked(
    ledger: Ledger, tmp_path: Path
) -> None:
    batch = finished_batch(ledger, tmp_path / "data", grid_pairs(1, 3), name="waiting")
    rows = ledger.jobs(batch_id=batch.id)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    assert ledger.waiting_for_checks(batch.id, an_hour_ago) == 3
    ledger.record_triage(rows[0].id, checks_version=CHECKS_VERSION, score=0.2)
    assert ledger.waiting_for_checks(batch.id, an_hour_ago) == 2
    assert ledger.waiting_for_checks(batch.id, datetime.now(UTC) + timedelta(hours=1)) == 0


@pytest.mark.slow
def test_the_checking_process_answers_each_request_and_ends_with_its_input(
    tmp_path: Path,
) -> None:
    from mirrago.triage.child import CheckingProcess

    result = tmp_path / "result.png"
    shutil.copy(persons()[0].path, result)  # the person photo back: "unchanged"
    request = {"target": str(persons()[0].path), "garment": str(garments()[0].path)}
    checking = CheckingProcess()
    try:
        found = checking.check({**request, "result_path": str(result)})
        assert found.checked and "unchanged" in found.flags and found.score > 0.5
        missing = checking.check({**request, "result_path": str(tmp_path / "gone.png")})
        assert missing.reason == "the result file is missing"
    finally:
        checking.stop()
