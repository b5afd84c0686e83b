"""The three exports of a batch (Results CSV, Images ZIP with manifest, HTML report), the
comparison CSV and `mirrago export`, on known data in a real SQLite ledger."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from review_data import finished_batch, grid_pairs

from mirrago import review
from mirrago.cli import main
from mirrago.config import Settings
from mirrago.ledger import JobInput, Ledger
from mirrago.review import exports, report

HOSTILE = '<img src=x onerror=alert(1)> & "quotes"'


def _reviewed_batch(ledger: Ledger, data_dir: Path) -> int:
    """3 persons × 2 garments, row 4 failed at the server, rows 1–3 reviewed."""
    inputs = grid_pairs(3, 2)
    inputs[2] = JobInput(inputs[2].target, inputs[2].garment, "white", HOSTILE)
    batch = finished_batch(ledger, data_dir, inputs, name=f"QA {HOSTILE}", failed_rows=[3])
    rows = sorted(ledger.jobs(batch_id=batch.id), key=lambda job: job.row_index)
    review.give_verdict(ledger, rows[0], "pass", reviewer="Ana", seconds=2.5)
    review.give_verdict(ledger, rows[1], "fail", ["artifacts", "other"], HOSTILE, reviewer="Ana")
    review.give_verdict(ledger, rows[2], "fail", ["wrong-garment"], "=HYPERLINK(1)")
    return batch.id


def _csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 with the BOM
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def test_the_results_csv_has_every_row_in_input_order_with_every_column(
    ledger: Ledger, tmp_path: Path
) -> None:
    batch_id = _reviewed_batch(ledger, tmp_path)
    data = exports.results_csv(ledger, batch_id)
    header = next(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(header) == exports.RESULTS_COLUMNS
    rows = _csv(data)
    assert [row["row"] for row in rows] == ["1", "2", "3", "4", "5", "6"]
    assert [row["state"] for row in rows] == ["completed"] * 3 + ["failed"] + ["completed"] * 2
    assert [row["verdict"] for row in rows] == ["pass", "fail", "fail", "", "", ""]
    assert rows[1]["reasons"] == "artifacts;other" and rows[1]["note"] == HOSTILE
    assert rows[2]["note"] == "'=HYPERLINK(1)"  # no formula reaches a spreadsheet
    assert (rows[0]["reviewer"], rows[0]["review_seconds"]) == ("Ana", "2.5")
    assert rows[0]["reviewed_at"].startswith("20") and rows[2]["reviewer"] == ""
    assert rows[2]["username"] == HOSTILE and rows[2]["background"] == "white"
    assert rows[0]["result_file"] == f"row0001-{rows[0]['job_id']}.jpg"
    assert rows[3]["result_file"] == "" and "could not render" in rows[3]["error"]
    assert rows[0]["credits_before"].isdigit() and rows[0]["finished_at"]


def test_the_images_zip_names_each_result_and_has_the_manifest(
    ledger: Ledger, tmp_path: Path
) -> None:
    batch_id = _reviewed_batch(ledger, tmp_path)
    path = exports.zip_file(ledger, batch_id)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            manifest = _csv(archive.read("manifest.csv"))
            first = archive.read(names[0])
    finally:
        path.unlink()
    jobs = sorted(ledger.jobs(batch_id=batch_id), key=lambda job: job.row_index)
    expected = [f"row{j.row_index + 1:04d}-{j.job_id}.jpg" for j in jobs if j.row_index != 3]
    assert names == [*expected, "manifest.csv"]
    assert first == Path(jobs[0].result_path).read_bytes()
    assert [row["result_file"] for row in manifest if row["result_file"]] == expected
    assert len(manifest) == 6 and manifest[1]["verdict"] == "fail"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.cards = 0
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag == "article":
            self.cards += 1
        if tag == "script" or any(name.startswith("on") for name in values):
            self.scripts += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_report_is_self_contained_and_escapes_every_text(
    ledger: Ledger, tmp_path: Path
) -> None:
    batch_id = _reviewed_batch(ledger, tmp_path)
    path = report.html_file(ledger, batch_id, generated_by="Ana")
    try:
        page = path.read_text(encoding="utf-8")
    finally:
        path.unlink()
    parsed = _Tags()
    parsed.feed(page)
    assert parsed.cards == 6 and parsed.scripts == 0
    assert parsed.images and all(src.startswith("data:image/") for src in parsed.images)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "url(" not in page.lower() and "@import" not in page.lower()
    assert "default-src 'none'" in page  # the browser itself refuses any fetch
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    text = "".join(parsed.text)
    assert "QA report: QA " + HOSTILE in text  # shown as text, exactly
    assert "Review pass33%" in text.replace("\n", "")  # 1 of 3 reviewed passed
    assert "Matrix: persons × garments" in text
    # every completed card has a result and both inputs (shipped samples) embedded
    assert len(parsed.images) >= 5 * 3


def test_the_html_report_words_and_colours_verdicts_as_their_badges(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = _reviewed_batch(ledger, tmp_path)
    monkeypatch.setitem(review.VERDICT_BADGES, review.PASS, ("Looks right", "blue", ""))
    monkeypatch.setitem(review.VERDICT_BADGES, review.FAIL, ("Needs work", "orange", ""))
    out = io.StringIO()
    report.write_html(ledger, batch_id, out)
    page = out.getvalue()
    assert '<span class="badge pass">Looks right</span>' in page
    assert '<span class="badge fail">Needs work</span>' in page
    assert ">Pass<" not in page and ">Fail<" not in page
    blue, orange = report.verdict_colour(review.PASS), report.verdict_colour(review.FAIL)
    assert blue != orange
    assert f"--pass:{blue};" in page and f"--fail:{orange};" in page
    assert f"border-color:{blue}" in page  # the matrix frames a passed result in its colour
    assert 'title="Row 1: Looks right"' in page


def test_the_comparison_csv_has_both_runs_and_the_judgement(ledger: Ledger, tmp_path: Path) -> None:
    pairs = grid_pairs(2, 2)
    left = finished_batch(ledger, tmp_path, pairs, name="left", prefix="l")
    right = finished_batch(ledger, tmp_path, pairs[1:], name="right", prefix="r")
    shared = review.compare_runs(ledger, left.id, right.id)
    review.judge(ledger, left.id, right.id, shared[0].key, "right")
    rows = _csv(exports.comparison_csv(ledger, left.id, right.id))
    assert [(r["left_row"], r["right_row"], r["judgement"]) for r in rows] == [
        ("2", "1", "right"),
        ("3", "2", ""),
        ("4", "3", ""),
    ]
    assert rows[0]["left_job_id"].startswith("l-") and rows[0]["right_job_id"].startswith("r-")


def test_the_cli_writes_the_three_exports(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = Ledger.open(Settings(data_dir=workdir / "data"))
    try:
        batch_id = _reviewed_batch(ledger, workdir / "data")
    finally:
        ledger.close()
    assert main(["export", str(batch_id), "--csv", "--zip", "out.zip", "--html", "r.html"]) == 0
    printed = capsys.readouterr().out
    csv_name = next(workdir.glob(f"batch-{batch_id}-*-results.csv"))
    assert f"results: {csv_name.name}" in printed
    assert len(_csv(csv_name.read_bytes())) == 6
    assert len(zipfile.ZipFile(workdir / "out.zip").namelist()) == 6
    assert "data:image/jpeg;base64," in (workdir / "r.html").read_text(encoding="utf-8")
    assert not list(workdir.glob(".*.tmp"))


def test_the_cli_export_says_what_to_do_for_an_unknown_batch(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "nope", "--csv"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("mirrago export: no batch 'nope'") and "\n" not in error
    assert main(["export", "1"]) == 2
    assert "choose at least one of --csv, --zip, --html" in capsys.readouterr().err
